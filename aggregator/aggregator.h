#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>

#include "aggregator/aggregator_config.h"
#include "aggregator/update_guard.h"
#include "aggregator/round_record.h"
#include "aggregator/state_store.h"
#include "aggregator/status_file.h"
#include "protocols/transport.h"

namespace ppreid::data {
struct Dataset;
}

namespace ppreid::agg {

// How a run of the daemon ended.
enum class RunOutcome {
  kFinished,  // `rounds` rounds completed; the sites were told Bye "finished"
  kStopped,   // a stop was requested (SIGINT/SIGTERM); state checkpointed, sites told "shutdown"
};

// Hooks for tests and for the simulator. Called on the daemon's thread.
struct AggregatorHooks {
  // After the checkpoint of every completed round.
  std::function<void(const RoundRecord&, const AggregatorState&)> on_round;
  // After the server is bound (its real endpoint, e.g. with an ephemeral port).
  std::function<void(const std::string& endpoint)> on_listening;
};

// The aggregator daemon: the round state machine of docs/federation.md over a proto::Server.
//
//   round r = wait for min_sites live sites -> sample sites_per_round of them -> Task to each ->
//   collect Updates (validated, folded into the strategy as they arrive) until every asked site
//   answered, went silent for site_timeout, or round_timeout passed -> with >= min_updates:
//   finish, checkpoint (StateStore), metrics.jsonl, optional evaluation; else abandon and retry.
//
// State survives kill -9: a restart resumes after the last checkpointed round with identical
// weights. One daemon per state directory (an advisory lock refuses a second one).
class Aggregator {
 public:
  // Loads the checkpoint of config.state_dir (or builds the initial model and checkpoints it as
  // round 0), takes the state directory lock and binds the server. Throws ppreid::Error for
  // an unusable config, a checkpoint of another federation or model, a held lock.
  explicit Aggregator(AggregatorConfig config, AggregatorHooks hooks = {});
  ~Aggregator();
  Aggregator(const Aggregator&) = delete;
  Aggregator& operator=(const Aggregator&) = delete;

  // Runs rounds until `rounds` are complete or `stop` becomes true (polled at least every
  // 200 ms). Throws ppreid::Error when a round failed max_attempts times.
  RunOutcome run(const std::atomic<bool>& stop);

  const std::string& endpoint() const;
  // Rounds completed so far (the checkpointed round).
  std::int64_t round() const { return state_.round; }
  const NamedTensors& global() const { return state_.global; }

 private:
  struct LiveSite;
  struct RoundProgress;
  class Lock;

  void start_fresh();
  void resume(AggregatorState saved);
  // One attempt at round state_.round + 1; true when it completed.
  bool run_round(int attempt, const std::atomic<bool>& stop);
  // Feeds the updates the guard held to the strategy and records what the guard did.
  void close_round(RoundProgress& progress);
  void evaluate(RoundProgress& progress, const std::set<std::string>& sites,
                const std::atomic<bool>& stop);
  void wait_for_sites(const std::atomic<bool>& stop);
  // Serves messages until every site of `asked` that is still live is in `answered`, the
  // deadline passes or a stop is requested.
  void serve_until(std::chrono::steady_clock::time_point deadline,
                   const std::set<std::string>& asked, const std::set<std::string>& answered,
                   const char* phase, RoundProgress& progress, const std::atomic<bool>& stop);
  // Receives for at most `timeout` and dispatches what arrived; returns after one message or
  // the timeout.
  void poll(std::chrono::milliseconds timeout, RoundProgress* progress);
  void on_hello(const proto::Received& in, RoundProgress* progress);
  void on_update(proto::Received& in, RoundProgress* progress);
  void on_eval_result(const proto::Received& in, RoundProgress* progress);
  // Secure aggregation (aggregator_secure.cpp): the stages after training, and their messages.
  // Returns "" when the sum was unmasked into progress.secure_sum, else why the round failed.
  std::string run_secure_stages(RoundProgress& progress,
                                std::chrono::steady_clock::time_point round_start,
                                const std::atomic<bool>& stop);
  void on_secure_message(const proto::Received& in, RoundProgress* progress);
  // The global model's change as the secure sum's mean, as one update for the strategy.
  ModelUpdate secure_update(const RoundProgress& progress) const;
  void reply_error(const proto::Received& in, proto::ErrorCode code, const std::string& message);
  void expire_silent_sites();
  std::vector<std::string> live_ids() const;
  void say_bye_to_all(const std::string& reason);
  void write_status(const std::string& phase, const RoundProgress* progress = nullptr);
  void checkpoint();
  std::string fingerprint_of(const std::string& site_id) const;

  AggregatorConfig config_;
  AggregatorHooks hooks_;
  std::unique_ptr<Lock> lock_;
  StateStore store_;
  AggregatorState state_;
  std::unique_ptr<Strategy> strategy_;
  UpdateValidator validator_;
  UpdateGuard guard_;
  MetricsLog metrics_;
  StatusFile status_;
  std::unique_ptr<proto::Server> server_;
  std::map<std::string, LiveSite> live_;
  std::chrono::system_clock::time_point started_at_;
  std::uint64_t transport_rejections_ = 0;  // malformed frames etc., answered by the Server
  std::map<std::string, std::uint64_t> transport_rejections_by_code_;  // since the last round
  std::unique_ptr<data::Dataset> eval_data_;  // evaluation.dataset, loaded on first use
  std::string last_phase_;
  std::string last_round_problem_;  // why the last attempt at a round failed
  bool sites_changed_ = false;  // a site joined or left since status.json was last written
};

}  // namespace ppreid::agg
