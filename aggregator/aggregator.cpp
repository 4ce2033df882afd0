#include "aggregator/aggregator.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include "aggregator/aggregator_internal.h"
#include "core/data/dataset.h"
#include "core/reid/model.h"
#include "core/tensor/torch_threads.h"
#include "core/util/atomic_file.h"
#include "core/util/error.h"

// The daemon is split by concern: this file holds its lifecycle (lock, start or resume,
// checkpoint) and the run loop; aggregator_rounds.cpp runs one round and its evaluation;
// aggregator_sites.cpp serves the sites' messages and keeps the live-site table and status.json.

namespace ppreid::agg {
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

// The advisory lock that keeps a second daemon out of a state directory: two aggregators
// writing one checkpoint would each lose the other's rounds.
class Aggregator::Lock {
 public:
  explicit Lock(const fs::path& dir) {
    fs::create_directories(dir);
    const fs::path file = dir / "aggregator.lock";
    fd_ = ::open(file.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd_ < 0) throw Error("cannot open the lock file '" + file.string() + "'");
    if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
      std::string holder = util::read_file(file);
      ::close(fd_);
      throw Error("another aggregator (pid " + (holder.empty() ? std::string("?") : holder) +
                  ") is running on the state directory '" + dir.string() +
                  "'; stop it first or give this one another state_dir");
    }
    std::string pid = std::to_string(::getpid());
    if (::ftruncate(fd_, 0) != 0 || ::pwrite(fd_, pid.data(), pid.size(), 0) < 0)
      spdlog::warn("cannot write the pid into '{}'", file.string());
  }
  ~Lock() { ::close(fd_); }  // closing releases the flock

 private:
  int fd_ = -1;
};

Aggregator::Aggregator(AggregatorConfig config, AggregatorHooks hooks)
    : config_(std::move(config)),
      hooks_(std::move(hooks)),
      lock_(std::make_unique<Lock>(config_.state_dir)),
      store_(config_.state_dir),
      strategy_(make_strategy(config_.strategy)),
      validator_(config_.validation),
      guard_(config_.validation),
      metrics_(config_.state_dir / "metrics.jsonl"),
      status_(config_.state_dir),
      started_at_(std::chrono::system_clock::now()) {
  tensor::configure_torch_threads(config_.threads);
  // A robust strategy's limit on the number of updates (e.g. Krum: n > 2f + 2) raises the
  // round's minimum: a round with fewer updates could not be aggregated as the config promises.
  if (const std::size_t need = config_.strategy.min_updates(); need > config_.min_updates) {
    spdlog::info("strategy {} needs at least {} updates per round; sites.min_updates raised "
                 "from {} to {}",
                 to_string(config_.strategy.kind), need, config_.min_updates, need);
    config_.min_updates = need;
    config_.min_sites = std::max(config_.min_sites, need);
  }
  // The sum of one site's update is that update: secure aggregation needs two at least.
  if (config_.secure_aggregation.enabled && config_.min_updates < 2) {
    spdlog::info("secure aggregation needs at least 2 updates per round; sites.min_updates "
                 "raised from {} to 2",
                 config_.min_updates);
    config_.min_updates = 2;
    config_.min_sites = std::max<std::size_t>(config_.min_sites, 2);
  }
  if (auto saved = store_.load())
    resume(std::move(*saved));
  else
    start_fresh();
  // Every Task carries the whole shared model: refuse now rather than at the first round.
  const std::uint64_t model_bytes = byte_size(state_.global);
  if (model_bytes + (1u << 20) > config_.max_message_bytes)
    throw Error(config_.source + ": transport.max_message_mb is " +
                std::to_string(config_.max_message_bytes >> 20) + " but one model update takes " +
                std::to_string(model_bytes) + " bytes; raise it to at least " +
                std::to_string((model_bytes >> 20) + 2));
  server_ = std::make_unique<proto::Server>(config_.server_options());
  server_->set_rejection_observer([this](const proto::Rejection& r) {
    ++transport_rejections_;
    ++transport_rejections_by_code_[proto::to_string(r.code)];
  });
  spdlog::info("aggregator of federation '{}' listening on {} ({}), strategy {}, {} rounds",
               config_.federation_id, server_->endpoint(),
               config_.security == proto::Security::kCurve ? "CURVE" : "INSECURE",
               to_string(config_.strategy.kind),
               config_.rounds == 0 ? std::string("unlimited") : std::to_string(config_.rounds));
  if (hooks_.on_listening) hooks_.on_listening(server_->endpoint());
}

Aggregator::~Aggregator() = default;

const std::string& Aggregator::endpoint() const { return server_->endpoint(); }

void Aggregator::start_fresh() {
  torch::manual_seed(config_.seed);
  reid::ReidModel model(reid::ModelOptions{config_.model.backbone, 0, true});
  state_ = AggregatorState{};
  state_.round = 0;
  state_.global = model->shared_state();
  state_.strategy = strategy_->state();
  checkpoint();
  std::int64_t params = 0;
  for (const auto& [name, t] : state_.global) params += t.numel();
  spdlog::info("new federation '{}': initial {} model ({} tensors, {} values, seed {}) "
               "checkpointed as round 0 in {}",
               config_.federation_id, config_.model.backbone.arch, state_.global.size(), params,
               config_.seed, store_.checkpoint_dir().string());
}

void Aggregator::resume(AggregatorState saved) {
  const std::string where = store_.checkpoint_dir().string();
  const std::string saved_federation = saved.info.value("federation_id", std::string());
  if (saved_federation != config_.federation_id)
    throw Error("the checkpoint in '" + where + "' belongs to federation '" + saved_federation +
                "' but " + config_.source + " says '" + config_.federation_id +
                "'; use another state_dir for a new federation");
  reid::ReidModel model(reid::ModelOptions{config_.model.backbone, 0, true});
  std::string diff = structure_difference(model->shared_state(), saved.global);
  if (!diff.empty())
    throw Error("the checkpoint in '" + where + "' holds another model than " +
                config_.model_config.string() + " builds (" + diff +
                "); use the model config the federation started with, or another state_dir");
  try {
    strategy_->restore(saved.strategy, saved.global);
  } catch (const Error& e) {
    throw Error(std::string(e.what()) + " (the checkpoint in '" + where + "' was written by " +
                std::string(to_string(saved.strategy.kind)) + ", " + config_.source +
                " asks for " + std::string(to_string(config_.strategy.kind)) +
                "; keep the strategy of a running federation or use another state_dir)");
  }
  state_ = std::move(saved);
  spdlog::info("resuming federation '{}' after round {} from {} ({} known sites)",
               config_.federation_id, state_.round, where, state_.sites.size());
}

void Aggregator::checkpoint() {
  state_.info = {{"federation_id", config_.federation_id},
                 {"model_arch", config_.model.backbone.arch},
                 {"model_config", config_.model_config.filename().string()}};
  store_.save(state_);
}

RunOutcome Aggregator::run(const std::atomic<bool>& stop) {
  while (!stop) {
    if (config_.rounds > 0 && state_.round >= config_.rounds) {
      spdlog::info("all {} rounds completed; telling the sites the federation is finished",
                   config_.rounds);
      say_bye_to_all("finished: " + std::to_string(config_.rounds) + " rounds completed");
      write_status("finished");
      return RunOutcome::kFinished;
    }
    wait_for_sites(stop);
    for (int attempt = 1; !stop; ++attempt) {
      if (run_round(attempt, stop)) break;
      if (stop) break;
      if (config_.max_attempts > 0 && attempt >= config_.max_attempts) {
        say_bye_to_all("shutdown: round " + std::to_string(state_.round + 1) + " failed");
        write_status("failed");
        throw Error("round " + std::to_string(state_.round + 1) + " failed " +
                    std::to_string(attempt) + " time(s) (the last: " + last_round_problem_ +
                    "; see " + metrics_.file().string() + "); the last completed round " +
                    std::to_string(state_.round) + " is checkpointed; raise " +
                    "sites.max_attempts or lower sites.min_updates and restart");
      }
      wait_for_sites(stop);
    }
  }
  if (strategy_->in_round()) strategy_->abandon();
  checkpoint();  // the registry may have learned new sites since the last round
  say_bye_to_all("shutdown: the aggregator was stopped after round " +
                 std::to_string(state_.round) + "; it resumes from there");
  write_status("stopped");
  spdlog::info("stopped after round {}; state checkpointed in {}", state_.round,
               store_.checkpoint_dir().string());
  return RunOutcome::kStopped;
}

void Aggregator::wait_for_sites(const std::atomic<bool>& stop) {
  auto last_log = Clock::now() - std::chrono::hours(1);
  while (!stop) {
    expire_silent_sites();
    if (live_.size() >= config_.min_sites) return;
    if (Clock::now() - last_log > std::chrono::seconds(10)) {
      spdlog::info("waiting for sites: {} of at least {} connected ({})", live_.size(),
                   config_.min_sites, detail::join(live_ids()));
      last_log = Clock::now();
    }
    write_status("waiting_for_sites");
    poll(detail::kPollSlice, nullptr);
  }
}

}  // namespace ppreid::agg
