#pragma once

// Storages: the zip records data/<key>, loaded once each and shared by the tensors viewing them.

#include <ATen/core/Tensor.h>
#include <c10/core/ScalarType.h>
#include <caffe2/serialize/inline_container.h>

#include <cstdint>
#include <string>
#include <unordered_map>

namespace ppreid::reid::pickle {

struct StorageType {
  const char* name;
  c10::ScalarType dtype;
};

// The storage classes torch.save names in persistent ids (torch.<Name>, or torch.cuda.<Name>
// in files saved from the GPU by torch < 1.12).
inline constexpr StorageType kStorageTypes[] = {
    {"FloatStorage", c10::kFloat},
    {"DoubleStorage", c10::kDouble},
    {"HalfStorage", c10::kHalf},
    {"BFloat16Storage", c10::kBFloat16},
    {"ComplexFloatStorage", c10::kComplexFloat},
    {"ComplexDoubleStorage", c10::kComplexDouble},
    {"LongStorage", c10::kLong},
    {"IntStorage", c10::kInt},
    {"ShortStorage", c10::kShort},
    {"CharStorage", c10::kChar},
    {"ByteStorage", c10::kByte},
    {"BoolStorage", c10::kBool},
    {"UntypedStorage", c10::kByte},  // torch >= 2 saving a bare untyped storage: bytes
};

class StorageSource {
 public:
  StorageSource(caffe2::serialize::PyTorchStreamReader& reader, const std::string& where,
                uint64_t budget_bytes)
      : reader_(reader), where_(where), budget_bytes_(budget_bytes) {}

  at::Tensor get(const std::string& key, c10::ScalarType dtype, int64_t numel);

  // Counts the bytes of a tensor about to be copied out of a storage. Views may overlap, so a
  // few hundred bytes of pickle could otherwise copy one large storage thousands of times.
  void charge(const std::string& key, uint64_t bytes);

 private:
  caffe2::serialize::PyTorchStreamReader& reader_;
  const std::string& where_;
  std::unordered_map<std::string, at::Tensor> cache_;
  uint64_t budget_bytes_;
  uint64_t spent_bytes_ = 0;
};

}  // namespace ppreid::reid::pickle
