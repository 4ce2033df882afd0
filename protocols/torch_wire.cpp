#include "protocols/torch_wire.h"

#include <cstring>

#include "core/util/error.h"

namespace ppreid::proto {

DType wire_dtype(torch::ScalarType type) {
  switch (type) {
    case torch::kFloat32: return DType::kF32;
    case torch::kFloat64: return DType::kF64;
    case torch::kFloat16: return DType::kF16;
    case torch::kBFloat16: return DType::kBF16;
    case torch::kInt64: return DType::kI64;
    case torch::kInt32: return DType::kI32;
    case torch::kInt16: return DType::kI16;
    case torch::kInt8: return DType::kI8;
    case torch::kUInt8: return DType::kU8;
    case torch::kBool: return DType::kBool;
    default:
      throw Error(std::string("tensor dtype ") + c10::toString(type) +
                  " has no wire encoding (supported: f32, f64, f16, bf16, i64, i32, i16, i8, u8, "
                  "bool)");
  }
}

torch::ScalarType torch_dtype(DType dtype) {
  switch (dtype) {
    case DType::kF32: return torch::kFloat32;
    case DType::kF64: return torch::kFloat64;
    case DType::kF16: return torch::kFloat16;
    case DType::kBF16: return torch::kBFloat16;
    case DType::kI64: return torch::kInt64;
    case DType::kI32: return torch::kInt32;
    case DType::kI16: return torch::kInt16;
    case DType::kI8: return torch::kInt8;
    case DType::kU8: return torch::kUInt8;
    case DType::kBool: return torch::kBool;
  }
  throw Error("wire dtype " + std::to_string(static_cast<int>(dtype)) + " is unknown");
}

NamedWireTensors to_wire(const NamedTensors& tensors) {
  NamedWireTensors out;
  out.reserve(tensors.size());
  for (const auto& [name, tensor] : tensors) {
    if (!tensor.defined()) throw Error("tensor '" + name + "' is undefined");
    WireTensor& w = out.emplace_back();
    w.name = name;
    try {
      w.dtype = wire_dtype(tensor.scalar_type());
    } catch (const Error& e) {
      throw Error("tensor '" + name + "': " + e.what());
    }
    const torch::Tensor cpu = tensor.detach().to(torch::kCPU).contiguous();
    w.shape.assign(cpu.sizes().begin(), cpu.sizes().end());
    w.data.resize(cpu.nbytes());
    if (!w.data.empty()) std::memcpy(w.data.data(), cpu.data_ptr(), w.data.size());
  }
  return out;
}

NamedTensors from_wire(const NamedWireTensors& tensors) {
  validate_tensors(tensors);
  NamedTensors out;
  out.reserve(tensors.size());
  for (const WireTensor& w : tensors) {
    torch::Tensor t = torch::empty(w.shape, torch::TensorOptions().dtype(torch_dtype(w.dtype)));
    if (!w.data.empty()) std::memcpy(t.data_ptr(), w.data.data(), w.data.size());
    out.emplace_back(w.name, std::move(t));
  }
  return out;
}

}  // namespace ppreid::proto
