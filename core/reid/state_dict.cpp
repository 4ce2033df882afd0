#include "core/reid/state_dict.h"

#include <fstream>
#include <iterator>

#include "core/util/atomic_file.h"
#include "core/util/error.h"

namespace ppreid::reid {

void save_state_dict(const std::filesystem::path& path, const NamedTensors& tensors) {
  c10::Dict<std::string, at::Tensor> dict;
  for (const auto& [name, tensor] : tensors) dict.insert(name, tensor.detach().contiguous().cpu());
  std::vector<char> bytes = torch::pickle_save(dict);
  util::write_file_atomic(path, std::string_view(bytes.data(), bytes.size()));
}

NamedTensors load_state_dict(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error("cannot read state_dict '" + path.string() + "'");
  std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  c10::IValue value;
  try {
    value = torch::pickle_load(bytes);
  } catch (const c10::Error& e) {
    throw Error("'" + path.string() + "' is not a torch.save file (" +
                std::string(e.what_without_backtrace()).substr(0, 120) + ")");
  }
  if (!value.isGenericDict())
    throw Error("'" + path.string() + "' does not hold a plain dict of tensors" +
                (value.isNone() ? " (an OrderedDict from model.state_dict() must be saved as "
                                  "torch.save(dict(sd), path): LibTorch 1.13 cannot read "
                                  "OrderedDict pickles)"
                                : ""));
  NamedTensors out;
  for (const auto& entry : value.toGenericDict()) {
    if (!entry.key().isString())
      throw Error("'" + path.string() + "': a key of the dict is not a string");
    if (!entry.value().isTensor())
      throw Error("'" + path.string() + "': entry '" + entry.key().toStringRef() +
                  "' is not a tensor");
    out.emplace_back(entry.key().toStringRef(), entry.value().toTensor());
  }
  return out;
}

}  // namespace ppreid::reid
