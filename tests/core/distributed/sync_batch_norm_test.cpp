#include "core/distributed/sync_batch_norm.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "core/reid/batch_norm.h"
#include "tests/support/errors.h"
#include "tests/support/ranks.h"

namespace ppreid::dist {
namespace {

torch::Tensor bn_input_of(int rank) {
  // Different shapes of data per rank, a mean far from 0 (the variance must not cancel away).
  torch::manual_seed(10 + rank);
  return torch::randn({3 + rank, 4, 3, 2}) * (1.5 + rank) + 5.0;
}

torch::Tensor weights_of(int rank) {
  torch::manual_seed(20 + rank);
  return torch::randn({3 + rank, 4, 3, 2});
}

TEST(SyncBatchNormTest, EqualsBatchNormOverTheConcatenatedBatchForwardAndBackward) {
  // Reference: one process, torch's BatchNorm2d on both ranks' inputs together.
  torch::nn::BatchNorm2d reference(torch::nn::BatchNorm2dOptions(4));
  torch::Tensor x0 = bn_input_of(0).requires_grad_(), x1 = bn_input_of(1).requires_grad_();
  torch::Tensor y = reference(torch::cat({x0, x1}));
  (y * torch::cat({weights_of(0), weights_of(1)})).sum().backward();
  const torch::Tensor y_ref[2] = {y.narrow(0, 0, 3).detach(), y.narrow(0, 3, 4).detach()};
  const torch::Tensor dx_ref[2] = {x0.grad(), x1.grad()};
  reference->eval();  // for the eval-mode comparison below (the ranks only read it)
  // Drawn here: the ranks are threads, and torch's generator is one per process.
  const torch::Tensor inputs[2] = {bn_input_of(0), bn_input_of(1)};
  const torch::Tensor upstream[2] = {weights_of(0), weights_of(1)};

  testing::run_ranks(2, [&](Communicator& comm) {
    const int r = comm.rank();
    reid::SyncableBatchNorm bn = reid::SyncableBatchNorm2d(4);
    EXPECT_EQ(reid::set_batch_norm_sync(*bn, &comm), 1);
    torch::Tensor x = inputs[r].clone().requires_grad_();
    torch::Tensor out = bn(x);
    EXPECT_TRUE(torch::allclose(out, y_ref[r], 1e-5, 1e-5)) << (out - y_ref[r]).abs().max();
    (out * upstream[r]).sum().backward();
    EXPECT_TRUE(torch::allclose(x.grad(), dx_ref[r], 1e-5, 1e-5))
        << (x.grad() - dx_ref[r]).abs().max();
    // Parameter gradients: the sum over ranks is the single-process gradient.
    torch::Tensor dw = bn->weight.grad().clone(), db = bn->bias.grad().clone();
    comm.all_reduce_sum(dw, "dw");
    comm.all_reduce_sum(db, "db");
    EXPECT_TRUE(torch::allclose(dw, reference->weight.grad(), 1e-5, 1e-4));
    EXPECT_TRUE(torch::allclose(db, reference->bias.grad(), 1e-5, 1e-4));
    // Running statistics: the global batch's (unbiased variance), as torch's BatchNorm keeps.
    EXPECT_TRUE(torch::allclose(bn->running_mean, reference->running_mean, 1e-6, 1e-5));
    EXPECT_TRUE(torch::allclose(bn->running_var, reference->running_var, 1e-6, 1e-5));
    EXPECT_EQ(bn->num_batches_tracked.item<std::int64_t>(), 1);
    // In eval mode it normalizes with those running statistics, like torch's BatchNorm.
    bn->eval();
    EXPECT_TRUE(torch::allclose(bn(x.detach()), reference(x.detach()), 1e-5, 1e-5));
  });
}

TEST(SyncBatchNormTest, WithoutACommunicatorItIsTorchsBatchNorm) {
  torch::manual_seed(1);
  reid::SyncableBatchNorm ours1 = reid::SyncableBatchNorm1d(6);
  torch::nn::BatchNorm1d theirs1(torch::nn::BatchNorm1dOptions(6));
  reid::SyncableBatchNorm ours2 = reid::SyncableBatchNorm2d(3);
  torch::nn::BatchNorm2d theirs2(torch::nn::BatchNorm2dOptions(3));
  for (int step = 0; step < 2; ++step) {
    torch::Tensor x = torch::randn({5, 6}), y = torch::randn({2, 3, 4, 4});
    EXPECT_TRUE(torch::equal(ours1(x), theirs1(x)));
    EXPECT_TRUE(torch::equal(ours2(y), theirs2(y)));
  }
  // Same names in the same order (checkpoints and torchvision imports), same values.
  auto a = ours2->named_buffers(), b = theirs2->named_buffers();
  ASSERT_EQ(a.keys(), b.keys());
  for (const auto& key : a.keys()) EXPECT_TRUE(torch::equal(a[key], b[key])) << key;
  EXPECT_EQ(ours2->named_parameters().keys(), theirs2->named_parameters().keys());
  ours1->eval();
  theirs1->eval();
  torch::Tensor x = torch::randn({4, 6});
  EXPECT_TRUE(torch::equal(ours1(x), theirs1(x)));
  EXPECT_THAT(testing::error_of([&] { ours2(torch::zeros({2, 3})); }),
              ::testing::HasSubstr("BatchNorm2d over 3 channels got an input of shape [2,3]"));
}

TEST(SyncBatchNormTest, LocalStatisticsAreAveragedOverRanks) {
  testing::run_ranks(2, [](Communicator& comm) {
    reid::SyncableBatchNorm bn = reid::SyncableBatchNorm2d(2);
    bn->running_mean.fill_(comm.rank() == 0 ? 1.0 : 3.0);
    bn->running_var.fill_(comm.rank() == 0 ? 2.0 : 6.0);
    bn->weight.data().fill_(comm.rank() + 1.0);  // parameters are left alone
    reid::average_batch_norm_statistics(*bn, comm);
    EXPECT_TRUE(torch::equal(bn->running_mean, torch::full({2}, 2.0f)));
    EXPECT_TRUE(torch::equal(bn->running_var, torch::full({2}, 4.0f)));
    EXPECT_EQ(bn->weight[0].item<float>(), comm.rank() + 1.0f);
    reid::broadcast_module_state(*bn, comm, 1);
    EXPECT_EQ(bn->weight[0].item<float>(), 2.0f);
  });
}

}  // namespace
}  // namespace ppreid::dist
