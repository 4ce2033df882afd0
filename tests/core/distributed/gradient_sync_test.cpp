#include "core/distributed/gradient_sync.h"

#include <gtest/gtest.h>

#include "core/tensor/torch_threads.h"
#include "tests/support/ranks.h"

namespace ppreid::dist {
namespace {

// A small two-layer network; every rank builds it from the same seed.
struct Net {
  torch::nn::Linear a{nullptr}, b{nullptr};
  torch::nn::Linear unused{nullptr};  // has no gradient: must stay without one
  Net() {
    std::lock_guard seeded(tensor::torch_generator_mutex());  // the ranks are threads
    torch::manual_seed(3);
    a = torch::nn::Linear(5, 7);
    b = torch::nn::Linear(7, 2);
    unused = torch::nn::Linear(2, 2);
  }
  std::vector<torch::Tensor> params() const {
    std::vector<torch::Tensor> p = a->parameters();
    for (auto& t : b->parameters()) p.push_back(t);
    for (auto& t : unused->parameters()) p.push_back(t);
    return p;
  }
  torch::Tensor loss(const torch::Tensor& x) { return b(torch::tanh(a(x))).pow(2).mean(); }
};

torch::Tensor net_input_of(int rank) {
  return torch::linspace(-1, 1, 20).view({4, 5}) * (rank + 1) + rank;
}

// The gradient a single process gets from the mean of the two ranks' losses.
std::vector<torch::Tensor> reference_gradients() {
  Net net;
  torch::Tensor loss = (net.loss(net_input_of(0)) + net.loss(net_input_of(1))) / 2;
  loss.backward();
  std::vector<torch::Tensor> g;
  for (auto& p : net.params()) g.push_back(p.grad().defined() ? p.grad().clone() : torch::Tensor());
  return g;
}

TEST(GradientSyncTest, AveragedGradientsEqualTheSingleProcessGradientForEveryBucketing) {
  const std::vector<torch::Tensor> expected = reference_gradients();
  struct Case {
    double bucket_mb;
    bool overlap;
    int buckets;
  };
  // 6 tensors, in bucket (reverse) order of 2, 4 (unused), 2, 14, 7, 35 floats; 64 bytes is
  // 16 floats per bucket: {2, 4, 2}, {14}, {7}, {35}.
  for (const Case c : {Case{0.0, true, 6}, Case{0.0, false, 6}, Case{64.0 / (1024 * 1024), true, 4},
                       Case{25.0, true, 1}, Case{25.0, false, 1}}) {
    testing::run_ranks(2, [&](Communicator& comm) {
      Net net;
      GradientSync sync(comm, net.params(), BucketOptions{c.bucket_mb, c.overlap});
      EXPECT_EQ(sync.num_buckets(), c.buckets);
      EXPECT_EQ(sync.num_elements(), 35 + 7 + 14 + 2 + 4 + 2);
      for (int step = 0; step < 2; ++step) {  // the second step must not see the first's state
        for (auto& p : net.params()) p.mutable_grad() = torch::Tensor();
        sync.begin_step();
        net.loss(net_input_of(comm.rank())).backward();
        sync.finish_step();
        auto params = net.params();
        for (std::size_t i = 0; i < params.size(); ++i) {
          if (!expected[i].defined()) {
            EXPECT_FALSE(params[i].grad().defined()) << "parameter " << i;
            continue;
          }
          EXPECT_TRUE(torch::allclose(params[i].grad(), expected[i], 1e-6, 1e-7))
              << "bucket_mb " << c.bucket_mb << " overlap " << c.overlap << " parameter " << i;
        }
        // With overlap, buckets start from the gradient hooks while backward runs. In the first
        // step the unused layer's bucket (the first) holds them all back; from the second step
        // on it is known to be unused and every bucket starts during backward.
        if (c.overlap)
          EXPECT_EQ(sync.launched_during_backward(), step == 0 ? 0 : c.buckets) << c.bucket_mb;
        else
          EXPECT_EQ(sync.launched_during_backward(), 0);
      }
    });
  }
}

}  // namespace
}  // namespace ppreid::dist
