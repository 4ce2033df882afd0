#pragma once

// The collectives a data-parallel site needs, on LibTorch's c10d (ProcessGroupGloo over a
// TCPStore rendezvous). Every call is collective: all ranks make the same calls in the same order.
// A peer that died or stopped answering makes the call throw ppreid::Error within the launch
// timeout, naming the operation, this rank and what to do; nothing waits forever.

#include <torch/torch.h>

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/distributed/launch.h"
#include "core/util/error.h"

namespace ppreid::dist {

// A collective (or the rendezvous store) failed: another rank died, timed out or disagreed.
// Distinct from other errors because retrying the step cannot help; the whole group restarts.
class CollectiveError : public Error {
 public:
  using Error::Error;
};

// An all-reduce in flight (Communicator::all_reduce_sum_async); wait() rethrows its failure
// as ppreid::Error.
class PendingReduce {
 public:
  PendingReduce() = default;
  void wait();
  bool valid() const { return static_cast<bool>(wait_); }

 private:
  friend class Communicator;
  std::function<void()> wait_;  // waits for the c10d Work, converting its failure
};

class Communicator {
 public:
  // Rendezvous: rank 0 listens on options.host:port (TCPStore server) and every rank connects;
  // returns when all world_size ranks have joined the Gloo group. Throws ppreid::Error when the
  // others do not arrive within options.timeout or the port cannot be used.
  explicit Communicator(const LaunchOptions& options);
  ~Communicator();
  Communicator(const Communicator&) = delete;
  Communicator& operator=(const Communicator&) = delete;

  int rank() const { return options_.rank; }
  int world_size() const { return options_.world_size; }
  const LaunchOptions& options() const { return options_; }

  // In place, over all ranks (contiguous CPU tensors).
  void all_reduce_sum(torch::Tensor& tensor, const std::string& what);
  PendingReduce all_reduce_sum_async(torch::Tensor tensor, const std::string& what);
  void broadcast(torch::Tensor& tensor, int root, const std::string& what);
  // The row blocks of every rank, concatenated in rank order. Blocks may have different numbers
  // of rows (the other dimensions and the dtype must agree).
  torch::Tensor all_gather_rows(const torch::Tensor& rows, const std::string& what);
  // Bytes from `root` to everyone (what root passes is returned everywhere).
  std::string broadcast_bytes(const std::string& bytes, int root, const std::string& what);
  void barrier(const std::string& what);

  // Signalling through rank 0's rendezvous store, for waits longer than a collective may take
  // (a site's other ranks idle while rank 0 waits hours for the aggregator): post() stores a
  // value under `key`; poll() returns it once it is there, nullopt before. Both throw
  // CollectiveError when the store (rank 0's process) is gone. Not collective.
  void post(const std::string& key, const std::string& value);
  std::optional<std::string> poll(const std::string& key);

 private:
  struct Group;  // the c10d objects, kept out of this header
  LaunchOptions options_;
  std::unique_ptr<Group> group_;
};

// The message for a failed collective: what failed, on which rank, why, and how to recover.
std::string collective_failure(const std::string& what, const LaunchOptions& options,
                               const std::string& cause);

}  // namespace ppreid::dist
