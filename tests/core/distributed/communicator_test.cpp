#include "core/distributed/communicator.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "tests/support/errors.h"
#include "tests/support/ranks.h"

namespace ppreid::dist {
namespace {

using ::testing::HasSubstr;
using Clock = std::chrono::steady_clock;

TEST(CommunicatorTest, AllReduceSumsAndBroadcastCopiesFromTheRoot) {
  testing::run_ranks(2, [](Communicator& comm) {
    const float r = static_cast<float>(comm.rank());
    torch::Tensor t = torch::tensor({1.0f + r, 10.0f * r, -3.0f});
    comm.all_reduce_sum(t, "test");
    EXPECT_TRUE(torch::equal(t, torch::tensor({3.0f, 10.0f, -6.0f})));

    torch::Tensor b = torch::full({2, 2}, r + 7);
    comm.broadcast(b, 1, "test");
    EXPECT_TRUE(torch::equal(b, torch::full({2, 2}, 8.0f)));

    const std::string got = comm.broadcast_bytes(comm.rank() == 0 ? std::string("ab\0c", 4) : "",
                                                 0, "bytes");
    EXPECT_EQ(got, std::string("ab\0c", 4));
    EXPECT_EQ(comm.broadcast_bytes("", 0, "nothing"), "");
  });
}

TEST(CommunicatorTest, AllGatherRowsKeepsRankOrderForUnequalBlocks) {
  testing::run_ranks(2, [](Communicator& comm) {
    // Rank 0 has 3 rows, rank 1 has 1: the gathered block is rank 0's then rank 1's.
    torch::Tensor mine = comm.rank() == 0 ? torch::arange(6, torch::kFloat32).view({3, 2})
                                          : torch::tensor({{100.0f, 101.0f}});
    torch::Tensor all = comm.all_gather_rows(mine, "rows");
    torch::Tensor expected =
        torch::tensor({{0.0f, 1.0f}, {2.0f, 3.0f}, {4.0f, 5.0f}, {100.0f, 101.0f}});
    EXPECT_TRUE(torch::equal(all, expected)) << all;
    // An empty block is fine too.
    torch::Tensor ids = comm.rank() == 0 ? torch::empty({0}, torch::kInt64)
                                         : torch::tensor({5, 6}, torch::kInt64);
    EXPECT_TRUE(torch::equal(comm.all_gather_rows(ids, "ids"), torch::tensor({5, 6}, torch::kInt64)));
  });
}

TEST(CommunicatorTest, ARankThatNeverArrivesFailsRendezvousWithinTheTimeout) {
  const auto start = Clock::now();
  const std::string message = testing::error_of([] {
    Communicator alone(testing::loopback_launch(2, 0, testing::free_tcp_port(),
                                                std::chrono::milliseconds(1500)));
  });
  const double waited = std::chrono::duration<double>(Clock::now() - start).count();
  EXPECT_THAT(message, HasSubstr("rendezvous at 127.0.0.1:"));
  EXPECT_THAT(message, HasSubstr("rank 0 of 2"));
  EXPECT_LT(waited, 20.0);
}

TEST(CommunicatorTest, ADeadPeerMakesTheNextCollectiveFailWithAClearError) {
  const int port = testing::free_tcp_port();
  std::atomic<bool> joined{false};
  std::string message;
  double waited = -1;
  std::thread survivor([&] {
    Communicator comm(testing::loopback_launch(2, 0, port, std::chrono::seconds(3)));
    torch::Tensor t = torch::ones({4});
    comm.all_reduce_sum(t, "warm-up");
    joined = true;
    const auto start = Clock::now();
    message = testing::error_of([&] {
      for (int i = 0; i < 1000; ++i) comm.all_reduce_sum(t, "gradient all-reduce");
    });
    waited = std::chrono::duration<double>(Clock::now() - start).count();
  });
  {
    // The peer joins, takes part once, and goes away (its sockets close, as when a process dies).
    Communicator peer(testing::loopback_launch(2, 1, port, std::chrono::seconds(3)));
    torch::Tensor t = torch::ones({4});
    peer.all_reduce_sum(t, "warm-up");
  }
  survivor.join();
  ASSERT_TRUE(joined);
  EXPECT_THAT(message, HasSubstr("gradient all-reduce failed on rank 0 of 2"));
  EXPECT_THAT(message, HasSubstr("restart all of them"));
  EXPECT_LT(waited, 3.0 + 5.0);  // within the timeout (plus scheduling slack)
}

}  // namespace
}  // namespace ppreid::dist
