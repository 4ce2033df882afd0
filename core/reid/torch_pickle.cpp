#include "core/reid/torch_pickle.h"

#include <caffe2/serialize/inline_container.h>
#include <torch/torch.h>

#include <algorithm>
#include <bit>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <string>
#include <unordered_set>

#include "core/reid/pickle/storage_source.h"
#include "core/reid/pickle/unpickler.h"
#include "core/reid/pickle/value.h"
#include "core/reid/pickle/zip_check.h"
#include "core/util/error.h"

// The reader is split by stage under core/reid/pickle/: zip_check (the zip directory bounds every
// allocation by the file size), value (the pickle object model), storage_source (data/<key>
// records as tensors), unpickler (the opcode machine). This file picks the state_dict out of the
// unpickled object.

namespace ppreid::reid {
namespace pickle {
namespace {

// The tensors of `dict`, or an Error naming the first entry that is not one. `path` is how the
// dict is reached ("" for the top level, "entry 'state_dict' -> ").
NamedTensors collect_tensors(const Value& dict, const std::string& where, const std::string& path,
                             const std::string& advice) {
  NamedTensors out;
  out.reserve(dict.entries.size());
  std::unordered_set<const c10::TensorImpl*> seen;
  for (const auto& [key, value] : dict.entries) {
    if (key->kind != Kind::kString)
      throw Error(where + ": " + path + "a key is " + describe(*key) +
                  ", not a string: this is not a state_dict");
    if (value->kind != Kind::kTensor)
      throw Error(where + ": " + path + "entry '" + key->text + "' is " + describe(*value) +
                  ", not a tensor" + advice);
    torch::Tensor t = value->tensor;
    // One tensor pickled under two keys (tied weights) would alias in memory: copy it.
    if (!seen.insert(t.unsafeGetTensorImpl()).second) t = t.clone();
    out.emplace_back(key->text, std::move(t));
  }
  return out;
}

NamedTensors select_state_dict(const Value& root, const std::string& where) {
  if (root.kind != Kind::kDict)
    throw Error(where + " holds " + describe(root) +
                ", not a dict of tensors; save "
                "model.state_dict() with torch.save(model.state_dict(), path)");
  const bool all_tensors = std::all_of(root.entries.begin(), root.entries.end(), [](const auto& e) {
    return e.second->kind == Kind::kTensor;
  });
  if (all_tensors) return collect_tensors(root, where, "", "");
  for (const char* wrapper : {"state_dict", "model"}) {
    const Value* inner = dict_get(root, wrapper);
    if (inner == nullptr) continue;
    const std::string path = std::string("entry '") + wrapper + "' -> ";
    if (inner->kind != Kind::kDict)
      throw Error(where + ": entry '" + wrapper + "' is " + describe(*inner) +
                  ", not a dict of tensors; save model.state_dict() there");
    return collect_tensors(*inner, where, path, "; only tensors can be loaded into a model");
  }
  return collect_tensors(root, where, "",
                         ", and there is no 'state_dict' or 'model' entry holding the tensors; "
                         "save model.state_dict() or a dict of tensors");
}

}  // namespace
}  // namespace pickle

NamedTensors read_torch_state_dict(const std::filesystem::path& file) {
  std::string where = "'";  // appended, not concatenated: dodges a GCC 12 -O3 false warning
  where.append(file.string()).append("'");
  if constexpr (std::endian::native != std::endian::little) {
    throw Error(where + ": reading torch.save files needs a little-endian machine");
  }
  std::error_code ec;
  if (!std::filesystem::is_regular_file(file, ec))
    throw Error(where + " does not exist or is not a regular file; check the path");
  const uint64_t file_size = std::filesystem::file_size(file, ec);
  if (ec) throw Error(where + ": cannot read its size (" + ec.message() + ")");

  unsigned char magic[4] = {0, 0, 0, 0};
  {
    std::ifstream in(file, std::ios::binary);
    if (!in) throw Error(where + ": cannot open the file for reading; check its permissions");
    in.read(reinterpret_cast<char*>(magic), 4);
  }
  if (std::memcmp(magic, "PK\x03\x04", 4) != 0) {
    // The legacy format is a bare pickle stream: protocol 2 starts with 0x80 0x02.
    if (magic[0] == 0x80)
      throw Error(where +
                  " is in the legacy (pre-1.6) torch.save format, which ppreid cannot "
                  "read; re-save it with torch.save(obj, path) from torch >= 1.6");
    throw Error(where +
                " is not a torch.save file (no zip header); expected the output of "
                "torch.save(model.state_dict(), path)");
  }
  const pickle::ZipSummary zip = pickle::ZipScanner(file, where, file_size).scan();

  try {
    caffe2::serialize::PyTorchStreamReader reader(file.string());
    if (!reader.hasRecord("data.pkl"))
      throw Error(where +
                  " is a zip archive without data.pkl; it was not written by "
                  "torch.save: save the state_dict with torch.save(model.state_dict(), path)");
    if (reader.hasRecord("byteorder")) {
      auto [order, order_size] = reader.getRecord("byteorder");
      const std::string text(static_cast<const char*>(order.get()), order_size);
      if (text != "little")
        throw Error(where + " was saved on a '" + text +
                    "'-endian machine; re-save it on a "
                    "little-endian one");
    }
    auto [data_pkl, data_pkl_size] = reader.getRecord("data.pkl");
    // Copies may reach the bytes the archive holds plus views of them; anything beyond a few
    // multiples is a crafted file.
    pickle::StorageSource storages(reader, where,
                                   4 * zip.uncompressed_bytes + (uint64_t{64} << 20));
    pickle::Unpickler unpickler(where, static_cast<const unsigned char*>(data_pkl.get()),
                                data_pkl_size, storages);
    pickle::ValuePtr root = unpickler.load();
    return pickle::select_state_dict(*root, where);
  } catch (const c10::Error& e) {
    std::string what = e.what_without_backtrace();
    what = what.substr(0, what.find('\n'));
    throw Error(where + ": PyTorch cannot read the zip archive (" + what +
                "); the file is truncated or corrupted: download or save it again");
  }
}

}  // namespace ppreid::reid
