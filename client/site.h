#pragma once

// The site runtime: ingest -> de-identify -> train -> federate. One Site per process in
// production (`ppreid site`); tests run one in a thread against a scripted aggregator.

#include <atomic>
#include <chrono>
#include <functional>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "client/site_config.h"
#include "core/data/dataset.h"
#include "core/distributed/communicator.h"
#include "core/reid/losses.h"
#include "core/reid/model.h"
#include "core/reid/train_config.h"
#include "protocols/message.h"
#include "protocols/secagg/site_session.h"
#include "protocols/transport.h"

namespace ppreid::client {

// What prepare() found and did.
struct PrepareReport {
  bool generated_raw = false;    // data.synth wrote the raw dataset
  bool deidentified = false;     // the store was (re)written in this start
  bool resumed = false;          // ...finishing an interrupted de-identification
  bool restored_state = false;   // the head and centres came from data.state
  proto::DatasetSummary summary;
};

// Counters of one run, for logs and tests (read them after run() returned).
struct SiteStats {
  std::uint64_t hellos = 0;
  std::uint64_t tasks_trained = 0;
  std::uint64_t stale_tasks = 0;
  std::uint64_t updates_sent = 0;
  std::uint64_t updates_dropped = 0;  // could not be sent within the attempts
  std::uint64_t evaluations = 0;
  std::uint64_t heartbeats = 0;
  std::uint64_t errors_received = 0;
  double last_fedprox_mu = 0.0;       // of the last Task trained
  double last_proximal_loss = 0.0;    // its mean FedProx term (0 when mu is 0)
  std::uint64_t secure_rounds = 0;    // masked updates sent (secure aggregation)
  std::uint64_t secure_refusals = 0;  // secure aggregation messages this site refused
};

enum class SiteExit {
  kFinished,  // the aggregator said Bye "finished...": the federation is over
  kStopped,   // the stop flag was set (a signal): Bye "shutdown: ..." was sent
  kVanished,  // a hook asked the site to vanish (simulated crash): no Bye, connection dropped
};

// What happens to a trained round's Update (SiteHooks::before_update decides).
enum class UpdateAction {
  kSend,      // send it (possibly altered by the hook)
  kWithhold,  // do not send it; stay connected (the aggregator sees a silent site)
  kVanish,    // do not send it and leave without a word, like a crashed process
};

struct UpdateDecision {
  UpdateAction action = UpdateAction::kSend;
  // Hold the Update back this long (a straggler); the site keeps sending heartbeats meanwhile.
  std::chrono::milliseconds delay{0};
};

// Fault injection for the simulator (stragglers, dropouts, broken or hostile updates, poisoned
// data, lying counts) and for tests. Production sites set none. Called on the site's thread.
struct SiteHooks {
  // After local training of `round`, before its Update is sent. May replace tensors of `shared`
  // (the weights about to be sent; assign new tensors, they may share storage with the model);
  // `global` holds the weights the round's Task carried.
  std::function<UpdateDecision(std::uint64_t round, const reid::NamedTensors& global,
                               reid::NamedTensors& shared)>
      before_update;
  // Once the store is loaded (prepare()), before any training: may rewrite the labels of the
  // train split (a site poisoning its own data). Labels must stay within 0..num_train_ids-1,
  // the classifier head's classes; prepare() refuses anything else.
  std::function<void(std::vector<data::ImageRecord>& train, int num_train_ids)> on_train_split;
  // The sample count the site claims for its `real` train images: in its Hello (round 0) and in
  // the Update of `round` (a site lying about its weight in the average).
  std::function<std::uint64_t(std::uint64_t round, std::uint64_t real)> claimed_samples;
  // Under secure aggregation, before the site answers a stage of `round` ("shares", "masked",
  // "unmask"): false makes it vanish instead (a site dropping out mid-protocol).
  std::function<bool(std::uint64_t round, const std::string& stage)> secure_stage;
};

// Session conventions (docs/PROTOCOL.md, the aggregator implements the other side):
//  * Hello (round 0) on connect and again whenever the transport re-handshook (aggregator
//    restarted); Heartbeat "idle" every heartbeat_interval, "training round R" while training.
//  * Task round R: dropped when R is below the highest Task round seen; otherwise the weights
//    must match this site's shared part (else ErrorMessage kRejected and the site fails), it
//    trains, sends Update round R (full weights, sample_count = store train images) and saves
//    its head and centres to data.state.
//  * Evaluate round R: evaluated on a second model, so training state is untouched; EvalResult
//    round R (query_count 0 and no metrics when there is no query split or evaluation is off).
//  * ErrorMessage: logged. Bye "finished...": run() returns kFinished. Any other Bye: the
//    aggregator is going away; the site waits for it to come back.
class Site {
 public:
  explicit Site(SiteConfig config, SiteHooks hooks = {});
  ~Site();
  Site(const Site&) = delete;
  Site& operator=(const Site&) = delete;

  // Raw dataset (generated when data.synth says so) -> de-identified store (skipped when it is
  // complete for the same method and parameters, resumed when interrupted, refused when it holds
  // another method's output) -> model with the saved head and centres. run() calls it if needed.
  PrepareReport prepare();

  // Connects (retrying with back-off until runtime.connect_give_up), says Hello and serves the
  // aggregator until it says Bye "finished" or `stop` becomes true. Throws ppreid::Error for
  // failures that retrying cannot fix (a wrong pinned key, a model mismatch, bad data).
  SiteExit run(const std::atomic<bool>& stop);

  // Data-parallel training inside the site (ppreid site --world-size W): rank 0 de-identifies,
  // talks to the aggregator and, for every Task, posts it to the other ranks through the
  // rendezvous store and broadcasts the global weights; all ranks then train the round together
  // and rank 0 sends the (identical) result. Ranks above 0 never connect to the aggregator and
  // need no keys; they train on the store rank 0 prepared (a shared filesystem, or a copy) and
  // wait for rank 0's commands for as long as it lives. Call before run(); `comm` must outlive
  // the Site.
  void set_data_parallel(dist::Communicator* comm) { comm_ = comm; }

  const SiteConfig& config() const { return config_; }
  const SiteStats& stats() const { return stats_; }
  // A snapshot of the shared part of the model as it is now (after prepare()).
  reid::NamedTensors shared_weights() const { return model_->shared_state(); }

 private:
  SiteExit lead(const std::atomic<bool>& stop);
  SiteExit follow(const std::atomic<bool>& stop);
  std::optional<std::string> await_post(const std::string& key, const std::atomic<bool>& stop);
  void post_command(const nlohmann::json& command);
  void share_start_state();
  bool follower() const { return comm_ && comm_->rank() > 0; }
  void check_keys() const;
  void connect(const std::atomic<bool>& stop);
  void say_hello();
  void heartbeat(const std::string& status);
  bool handle(const proto::Decoded& message, const std::atomic<bool>& stop);
  void on_task(std::uint64_t round, const proto::Task& task, const std::atomic<bool>& stop);
  void on_evaluate(std::uint64_t round, const proto::Evaluate& evaluate);
  // Secure aggregation (site_secure.cpp): after training, keys instead of an Update; then the
  // stages the aggregator drives. True when `env` was one of its messages.
  void start_secure_round(std::uint64_t round, const reid::NamedTensors& shared, double samples,
                          double loss);
  bool on_secure_message(const proto::Envelope& env);
  // Sends `payload` for `round`; false (logged) when the transport could not.
  // Takes the payload: it is moved into the frames (no copy of a masked update).
  bool send_logged(std::uint64_t round, proto::Payload payload, const char* what);
  void save_state(std::uint64_t round);
  void restore_state();
  std::string log_prefix() const;

  SiteConfig config_;
  SiteHooks hooks_;
  bool vanished_ = false;  // a hook said UpdateAction::kVanish
  reid::TrainConfig train_config_;
  std::optional<data::Dataset> store_;
  PrepareReport report_;
  reid::ReidModel model_{nullptr};
  reid::CenterLoss center_{nullptr};
  std::unique_ptr<proto::Client> client_;
  bool prepared_ = false;
  bool restored_state_ = false;
  std::uint64_t handshakes_seen_ = 0;
  bool hello_pending_ = false;
  std::optional<std::uint64_t> highest_task_round_;
  reid::NamedTensors last_task_weights_;
  // The round in secure aggregation: its session and, until masked, the flattened update.
  std::unique_ptr<secagg::SiteSession> secure_;
  std::vector<float> secure_update_;
  double secure_samples_ = 0, secure_loss_ = 0;
  SiteStats stats_;
  dist::Communicator* comm_ = nullptr;
  std::uint64_t commands_posted_ = 0;
};

}  // namespace ppreid::client
