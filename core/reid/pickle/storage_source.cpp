#include "core/reid/pickle/storage_source.h"

#include <torch/torch.h>

#include <memory>
#include <utility>

#include "core/util/error.h"

namespace ppreid::reid::pickle {

torch::Tensor StorageSource::get(const std::string& key, c10::ScalarType dtype, int64_t numel) {
  auto cached = cache_.find(key);
  if (cached != cache_.end()) {
    if (cached->second.scalar_type() != dtype || cached->second.numel() != numel)
      throw Error(where_ + ": storage '" + key +
                  "' is referenced with two different types "
                  "or sizes; the file is corrupted: save it again");
    return cached->second;
  }
  const std::string record = "data/" + key;
  if (!reader_.hasRecord(record))
    throw Error(where_ + ": storage '" + key + "' has no record '" + record +
                "' in the archive; the file is truncated or was not written by torch.save");
  auto [data, bytes] = reader_.getRecord(record);
  const auto item = static_cast<int64_t>(c10::elementSize(dtype));
  if (numel < 0 || numel > static_cast<int64_t>(bytes) / item)
    throw Error(where_ + ": storage '" + key + "' declares " + std::to_string(numel) + " " +
                c10::toString(dtype) + " elements but its record holds " + std::to_string(bytes) +
                " bytes; the file is corrupted: save it again");
  torch::Tensor storage;
  if (numel == 0) {
    storage = torch::empty({0}, torch::TensorOptions().dtype(dtype));
  } else {
    if (dtype == c10::kBool) {
      // A bool byte other than 0/1 is undefined behaviour in every kernel that reads it.
      const auto* p = static_cast<const unsigned char*>(data.get());
      for (int64_t i = 0; i < numel; ++i)
        if (p[i] > 1)
          throw Error(where_ + ": bool storage '" + key +
                      "' holds a byte that is neither 0 "
                      "nor 1; the file is corrupted: save it again");
    }
    auto owner = std::make_shared<at::DataPtr>(std::move(data));
    storage = torch::from_blob(
        owner->get(), {numel}, [owner](void*) {}, torch::TensorOptions().dtype(dtype));
  }
  cache_.emplace(key, storage);
  return storage;
}

void StorageSource::charge(const std::string& key, uint64_t bytes) {
  if (bytes > budget_bytes_ - spent_bytes_)
    throw Error(where_ + ": the tensors viewing storage '" + key + "' would copy more than " +
                std::to_string(budget_bytes_) +
                " bytes out of a file this size; the file is "
                "crafted or corrupted");
  spent_bytes_ += bytes;
}

}  // namespace ppreid::reid::pickle
