#pragma once

namespace ppreid::util {

// Sets LibTorch's intra-op thread count (0 = one per core) and returns the value in effect.
// Debian's LibTorch starts with a single thread, so every command that runs models calls this.
int configure_torch_threads(int requested);

}  // namespace ppreid::util
