#pragma once

// The one torch-aware file of protocols/: conversion between LibTorch tensors and wire tensors.
// Everything else in protocols/ is torch-free.

#include <torch/types.h>

#include <string>
#include <utility>
#include <vector>

#include "protocols/tensor_codec.h"

namespace ppreid::proto {

using NamedTensors = std::vector<std::pair<std::string, torch::Tensor>>;

// Copies each tensor's bytes (moved to the CPU and made contiguous first; the inputs are not
// modified). Throws ppreid::Error naming the tensor for a dtype the wire has no code for
// (complex, quantized...) or an undefined tensor.
NamedWireTensors to_wire(const NamedTensors& tensors);

// New CPU tensors that own a copy of the bytes. Validates the wire tensors first (shape against
// byte count, names), so a bad input is an Error, never an out-of-bounds read.
NamedTensors from_wire(const NamedWireTensors& tensors);

DType wire_dtype(torch::ScalarType type);   // throws for types without a wire code
torch::ScalarType torch_dtype(DType dtype);

}  // namespace ppreid::proto
