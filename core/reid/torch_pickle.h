#pragma once

#include <filesystem>

#include "core/reid/model.h"

namespace ppreid::reid {

// Reads a state_dict written by Python's torch.save in the zip format (the default since
// torch 1.6), without Python. LibTorch 1.13's torch::pickle_load returns None for the
// collections.OrderedDict that model.state_dict() is, so ppreid parses the pickle itself: a
// strict unpickler for the opcodes torch.save emits (protocols 2 to 5), which never runs code.
//
// The file may hold:
//   - a dict or OrderedDict whose values are all tensors (model.state_dict(), torchvision's
//     resnet50-0676ba61.pth): that is the result;
//   - otherwise a training checkpoint dict: the dict under "state_dict" is used, or, when there is
//     none, the dict under "model" ("state_dict" wins when both exist). Other entries (epoch,
//     optimizer state, hyper-parameters, even pickled Python objects) are parsed but ignored.
// Keys keep the file's order. Tensors come back on the CPU, contiguous, with their saved dtype
// (float32/64, float16, bfloat16, complex64/128, int64/32/16/8, uint8, bool), no gradient, and
// each owns its memory even when the file stored several views of one storage. A 0-d tensor (a
// BatchNorm's num_batches_tracked) stays 0-d.
//
// Throws ppreid::Error naming the file when it is missing, in the legacy pre-1.6 format, not a
// torch.save zip, truncated or corrupted, uses a pickle opcode outside that subset (named by
// byte and offset in data.pkl), holds a value that is not a tensor (named by key), uses an
// unsupported storage type (quantized, ...), or describes a tensor that does not fit in its
// storage. Crafted files give an Error, never a crash or an allocation larger than the file
// implies.
NamedTensors read_torch_state_dict(const std::filesystem::path& file);

}  // namespace ppreid::reid
