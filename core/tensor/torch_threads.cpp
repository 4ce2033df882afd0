#include "core/tensor/torch_threads.h"

#include <torch/torch.h>

#include <thread>

namespace ppreid::tensor {

int configure_torch_threads(int requested) {
  int n = requested > 0 ? requested : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  torch::set_num_threads(n);
  return torch::get_num_threads();
}

std::mutex& torch_generator_mutex() {
  static std::mutex mutex;
  return mutex;
}

}  // namespace ppreid::tensor
