#pragma once

#include <mutex>

namespace ppreid::tensor {

// Sets LibTorch's intra-op thread count (0 = one per core) and returns the value in effect.
// Debian's LibTorch starts with a single thread, so every command that runs models calls this.
int configure_torch_threads(int requested);

// LibTorch's default generator is one per process. Code that seeds it and then draws from it
// (weight initialization) holds this lock meanwhile, so that sites running as threads of one
// process (the simulator) do not interleave their draws and stay reproducible.
std::mutex& torch_generator_mutex();

}  // namespace ppreid::tensor
