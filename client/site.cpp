#include "client/site.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <set>
#include <thread>

#include "core/data/synth/generator.h"
#include "core/deid/deid_runner.h"
#include "core/profile/profile.h"
#include "core/reid/checkpoint.h"
#include "core/reid/features.h"
#include "core/reid/batch_norm.h"
#include "core/reid/local_training.h"
#include "core/util/atomic_dir.h"
#include "core/util/atomic_file.h"
#include "core/util/error.h"
#include "core/util/threads.h"
#include "protocols/text.h"
#include "protocols/torch_wire.h"

namespace ppreid::client {
namespace fs = std::filesystem;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

namespace {

constexpr const char* kStateMarker = "site_state.json";  // written last into data.state
constexpr const char* kDeidManifest = "deid.json";       // written last by deidentify_dataset
constexpr const char* kDeidPartial = "deid.partial.json";
constexpr int kUpdateAttempts = 3;  // then the Update is dropped: the aggregator retries rounds
constexpr auto kPoll = 100ms;       // how often the loop looks at the stop flag

// Sleeps `d` in short slices; false when `stop` was set meanwhile.
bool sleep_unless_stopped(std::chrono::milliseconds d, const std::atomic<bool>& stop) {
  const auto until = Clock::now() + d;
  while (Clock::now() < until) {
    if (stop.load()) return false;
    std::this_thread::sleep_for(std::min<Clock::duration>(kPoll, until - Clock::now()));
  }
  return !stop.load();
}

// "" when `got` has exactly the names and shapes of `expected`, else what differs.
std::string mismatch(const reid::NamedTensors& expected, const reid::NamedTensors& got) {
  std::map<std::string, const torch::Tensor*> want;
  for (const auto& [name, t] : expected) want.emplace(name, &t);
  std::string problems;
  int shown = 0;
  auto note = [&](const std::string& text) {
    if (++shown <= 8) problems += (problems.empty() ? "" : "; ") + text;
  };
  std::set<std::string> seen;
  for (const auto& [name, t] : got) {
    seen.insert(name);
    auto it = want.find(name);
    if (it == want.end()) note("unexpected tensor '" + proto::printable_for_log(name) + "'");
    else if (t.sizes() != it->second->sizes())
      note("'" + name + "' is " + reid::shape_string(t) + " in the message but " +
           reid::shape_string(*it->second) + " here");
  }
  for (const auto& [name, t] : expected)
    if (!seen.count(name)) note("missing '" + name + "'");
  if (shown > 8) problems += "; and " + std::to_string(shown - 8) + " more";
  return problems;
}

std::uint64_t distinct_cameras(const data::Dataset& ds) {
  std::set<int> cams;
  for (const auto* split : {&ds.train, &ds.query, &ds.gallery})
    for (const auto& r : *split) cams.insert(r.camid);
  return cams.size();
}

nlohmann::json settings_to_json(const reid::LocalRoundSettings& s) {
  return {{"local_epochs", s.local_epochs}, {"learning_rate", s.learning_rate},
          {"weight_decay", s.weight_decay}, {"fedprox_mu", s.fedprox_mu},
          {"p", s.p},                       {"k", s.k},
          {"seed", s.seed},                 {"round", s.round}};
}

reid::LocalRoundSettings settings_from_json(const nlohmann::json& j) {
  reid::LocalRoundSettings s;
  s.local_epochs = j.at("local_epochs").get<int>();
  s.learning_rate = j.at("learning_rate").get<double>();
  s.weight_decay = j.at("weight_decay").get<double>();
  s.fedprox_mu = j.at("fedprox_mu").get<double>();
  s.p = j.at("p").get<int>();
  s.k = j.at("k").get<int>();
  s.seed = j.at("seed").get<std::uint64_t>();
  s.round = j.at("round").get<std::uint64_t>();
  return s;
}

}  // namespace

Site::Site(SiteConfig config, SiteHooks hooks)
    : config_(std::move(config)), hooks_(std::move(hooks)) {}
Site::~Site() = default;

std::string Site::log_prefix() const {
  return "site " + config_.site_id +
         (comm_ ? " rank " + std::to_string(comm_->rank()) : std::string()) + ": ";
}

PrepareReport Site::prepare() {
  PrepareReport report;
  const SiteConfig& c = config_;

  // 1. The raw dataset. Generated only when absent; synth::generate renames a complete sibling
  //    into place, so an interrupted generation leaves no half dataset behind.
  if (!fs::exists(c.raw) && !follower()) {
    if (!c.synth)
      throw Error("the raw dataset '" + c.raw.string() + "' does not exist; set data.raw in '" +
                  c.file.string() + "' to the site's Market-1501 directory (or data.synth to "
                  "generate a synthetic one)");
    data::synth::SynthOptions o = load_profile(c.synth->profile).synth;
    o.seed = c.synth->seed;
    if (c.synth->ids) o.ids = *c.synth->ids;
    if (c.synth->images_per_id) o.images_per_id = *c.synth->images_per_id;
    o.threads = c.deid_threads;
    data::synth::validate(o);
    spdlog::info("{}generating the synthetic raw dataset into {} (seed {})", log_prefix(),
                 c.raw.string(), o.seed);
    data::synth::generate(o, c.raw);
    report.generated_raw = true;
  }

  // 2. The de-identified store, keyed by the method and its parameters (deid.json).
  std::unique_ptr<deid::Deidentifier> method =
      deid::make_deidentifier(c.deid, deid::ParameterNaming{"deid.", "-"});
  const nlohmann::json identity = {{"method", method->name()},
                                   {"parameters", method->parameters()}};
  auto same_run = [&](const fs::path& file) {
    nlohmann::json saved = nlohmann::json::parse(util::read_file(file));
    return saved.value("method", nlohmann::json()) == identity["method"] &&
           saved.value("parameters", nlohmann::json()) == identity["parameters"];
  };
  auto refuse = [&](const std::string& what) {
    throw Error("the store '" + c.store.string() + "' " + what + ", but '" + c.file.string() +
                "' asks for method " + method->name() + " with " + identity["parameters"].dump() +
                "; choose another data.store, or delete '" + c.store.string() +
                "' to de-identify the raw data again");
  };
  const bool partial = fs::exists(c.store / kDeidPartial);
  const bool complete = fs::exists(c.store / kDeidManifest) && !partial;
  if (complete) {
    if (!same_run(c.store / kDeidManifest))
      refuse("was de-identified with other parameters (its " + std::string(kDeidManifest) +
             " says " + nlohmann::json::parse(util::read_file(c.store / kDeidManifest))
                            .value("method", nlohmann::json("?")).dump() + ")");
    spdlog::info("{}store {} is complete for method {}; not de-identifying again", log_prefix(),
                 c.store.string(), method->name());
  } else if (follower()) {
    throw Error("rank " + std::to_string(comm_->rank()) + ": the de-identified store '" +
                c.store.string() + "' is not complete on this machine; ranks above 0 train on "
                "the store rank 0 prepared: put data.store on a filesystem all ranks share, or "
                "copy rank 0's store there before starting this rank");
  } else {
    if (partial && !same_run(c.store / kDeidPartial))
      refuse("holds an interrupted de-identification with other parameters");
    if (!partial && fs::exists(c.store) && !fs::is_empty(c.store))
      refuse("is not empty and holds no " + std::string(kDeidManifest) +
             " (it is not a store of `ppreid deid`)");
    if (partial) {
      // Resuming must not draw a new plan: rebuild the method as for `ppreid deid --resume`.
      deid::MethodSpec spec = c.deid;
      spec.resume = true;
      method = deid::make_deidentifier(spec, deid::ParameterNaming{"deid.", "-"});
    }
    deid::DeidRunOptions run;
    run.in = c.raw;
    run.out = c.store;
    run.threads = c.deid_threads;
    run.resume = partial;
    spdlog::info("{}de-identifying {} into {} with {}{}", log_prefix(), c.raw.string(),
                 c.store.string(), method->name(), partial ? " (resuming)" : "");
    deid::DeidReport r = deid::deidentify_dataset(*method, run);
    spdlog::info("{}de-identified {} images in {:.1f} s", log_prefix(), r.images, r.seconds);
    report.deidentified = true;
    report.resumed = partial;
  }

  // 3. The store and the model: a classifier over the store's own train identities.
  // Query/gallery are optional for a site (they only serve Evaluate); without them the loader
  // reads the train split alone.
  data::LoadOptions load = data::present_splits(c.store);
  load.require_train = true;  // a site trains: say so when its store has no train images
  store_ = data::load_dataset(c.store, load);
  train_config_ = reid::load_train_config(c.train_config);
  if (c.threads > 0) train_config_.profile.runtime.threads = c.threads;
  {
    std::lock_guard seeded(util::torch_generator_mutex());
    torch::manual_seed(train_config_.profile.runtime.seed);
    model_ = reid::ReidModel(
        reid::ModelOptions{train_config_.backbone, store_->num_train_ids, true});
    center_ = reid::CenterLoss(store_->num_train_ids, model_->feature_dim());
  }
  restore_state();
  report.restored_state = restored_state_;

  report.summary.images = store_->train.size();
  report.summary.identities = static_cast<std::uint64_t>(store_->num_train_ids);
  report.summary.cameras = distinct_cameras(*store_);
  report.summary.deid_method = method->name();
  const nlohmann::json params = method->parameters();
  if (method->name() == "dp" && params.contains("epsilon") && params["epsilon"].is_number())
    report.summary.epsilon = params["epsilon"].get<double>();
  report_ = report;
  prepared_ = true;
  return report;
}

// ---- the head and centres between rounds ----------------------------------------------------

void Site::save_state(std::uint64_t round) {
  util::write_directory_atomic(config_.state, [&](const fs::path& tmp) {
    reid::save_head(model_, tmp / "head.pt");
    torch::serialize::OutputArchive archive;
    center_->save(archive);
    archive.save_to((tmp / "center.pt").string());
    nlohmann::json info = {{"site_id", config_.site_id},
                           {"round", round},
                           {"num_classes", model_->num_classes()},
                           {"feature_dim", model_->feature_dim()},
                           {"arch", train_config_.backbone.arch}};
    util::write_file_atomic(tmp / kStateMarker, info.dump(2) + "\n");
  });
}

void Site::restore_state() {
  restored_state_ = false;
  const fs::path dir = util::complete_directory(config_.state, kStateMarker);
  if (dir.empty()) return;
  nlohmann::json info = nlohmann::json::parse(util::read_file(dir / kStateMarker));
  if (info.value("num_classes", -1) != model_->num_classes() ||
      info.value("feature_dim", -1) != model_->feature_dim() ||
      info.value("arch", std::string()) != train_config_.backbone.arch)
    throw Error("the saved site state in '" + dir.string() + "' is for a " +
                info.value("arch", std::string("?")) + " with " +
                std::to_string(info.value("num_classes", -1)) + " identities, but this site " +
                "trains a " + train_config_.backbone.arch + " over " +
                std::to_string(model_->num_classes()) + " identities of its store; delete '" +
                config_.state.string() + "' (the head is rebuilt) or point data.state elsewhere");
  reid::load_head(model_, dir / "head.pt");
  torch::serialize::InputArchive archive;
  archive.load_from((dir / "center.pt").string());
  center_->load(archive);
  restored_state_ = true;
  spdlog::info("{}restored its head and centres from {} (round {})", log_prefix(), dir.string(),
               info.value("round", 0));
}

// ---- connection ----------------------------------------------------------------------------

void Site::connect(const std::atomic<bool>& stop) {
  proto::ClientOptions o;
  o.endpoint = config_.endpoint;
  o.site_id = config_.site_id;
  o.federation_id = config_.federation_id;
  o.security = config_.security;
  o.secret_key_file = config_.secret_key_file;
  o.server_public_key_file = config_.server_public_key_file;
  o.reconnect_interval = config_.reconnect_initial;
  o.reconnect_interval_max = config_.reconnect_max;
  o.socket.handshake_timeout = config_.handshake_timeout;
  // A send that cannot be delivered soon means the aggregator is down: fail it and retry later
  // rather than block heartbeats and the stop flag for the default 30 s.
  o.socket.send_timeout = std::min<std::chrono::milliseconds>(config_.handshake_timeout, 5000ms);

  const auto started = Clock::now();
  auto backoff = config_.reconnect_initial;
  for (int attempt = 1;; ++attempt) {
    if (stop.load()) return;
    try {
      client_ = std::make_unique<proto::Client>(o);
      handshakes_seen_ = client_->handshakes();
      spdlog::info("{}connected to {} (attempt {})", log_prefix(), config_.endpoint, attempt);
      return;
    } catch (const proto::HandshakeError& e) {
      throw Error("the secure handshake with the aggregator at " + config_.endpoint +
                  " failed: " + e.what() + ". Either the pinned aggregator key is wrong (" +
                  "aggregator.public_key '" + config_.server_public_key_file.string() +
                  "' in '" + config_.file.string() + "' must be the aggregator's .pub file) or " +
                  "the aggregator's allow-list lacks this site ('" + config_.site_id +
                  ".pub' with the public key of '" + config_.secret_key_file.string() + "')");
    } catch (const zmq::error_t& e) {
      // A signal interrupted the wait for the handshake: look at the stop flag, then go on.
      if (e.num() != EINTR) throw;
      continue;
    } catch (const proto::ConnectError& e) {
      const auto waited = Clock::now() - started;
      if (config_.connect_give_up.count() > 0 && waited + backoff > config_.connect_give_up)
        throw Error("gave up reaching the aggregator at " + config_.endpoint + " after " +
                    std::to_string(attempt) + " attempts (" +
                    std::to_string(config_.connect_give_up.count() / 1000.0) + " s, " +
                    "runtime.connect_give_up in '" + config_.file.string() + "'): " + e.what());
      spdlog::warn("{}{}; retrying in {} ms", log_prefix(), e.what(), backoff.count());
      if (!sleep_unless_stopped(backoff, stop)) return;
      backoff = std::min(backoff * 2, config_.reconnect_max);
    }
  }
}

void Site::say_hello() {
  try {
    client_->send(0, proto::Hello{config_.site_id, report_.summary});
    hello_pending_ = false;
    ++stats_.hellos;
    spdlog::info("{}Hello sent ({} train images, {} identities, method {})", log_prefix(),
                 report_.summary.images, report_.summary.identities,
                 report_.summary.deid_method);
  } catch (const proto::HandshakeError&) {
    throw;
  } catch (const proto::TransportError& e) {
    hello_pending_ = true;  // retried in place of the next heartbeat
    spdlog::warn("{}cannot send Hello yet ({}); retrying", log_prefix(), e.what());
  }
}

void Site::heartbeat(const std::string& status) {
  try {
    client_->send(0, proto::Heartbeat{status});
    ++stats_.heartbeats;
  } catch (const proto::HandshakeError&) {
    throw;
  } catch (const proto::TransportError& e) {
    spdlog::warn("{}heartbeat not sent ({}); the aggregator may be restarting", log_prefix(),
                 e.what());
  }
}

// ---- messages ------------------------------------------------------------------------------

void Site::on_task(std::uint64_t round, const proto::Task& task, const std::atomic<bool>& stop) {
  if (highest_task_round_ && round < *highest_task_round_) {
    ++stats_.stale_tasks;
    spdlog::warn("{}stale task for round {} dropped (round {} already seen)", log_prefix(), round,
                 *highest_task_round_);
    return;
  }
  highest_task_round_ = round;
  reid::NamedTensors global = proto::from_wire(task.weights);
  const std::string problems = mismatch(model_->shared_state(), global);
  if (!problems.empty()) {
    const std::string text = "site " + config_.site_id + ": model mismatch: " + problems;
    try {
      client_->send(round, proto::ErrorMessage{proto::ErrorCode::kRejected, text});
    } catch (const proto::TransportError&) {
      // The site stops either way; the aggregator notices the missing Update.
    }
    throw Error("the round " + std::to_string(round) + " Task does not fit this site's model (" +
                problems + "); use the same model profile as the aggregator (training.config '" +
                config_.train_config.string() + "' in '" + config_.file.string() + "')");
  }
  const proto::TrainingSettings& s = task.settings;
  reid::LocalRoundSettings settings;
  settings.local_epochs = static_cast<int>(s.local_epochs);
  settings.learning_rate = s.learning_rate;
  settings.weight_decay = s.weight_decay;
  settings.fedprox_mu = s.fedprox_mu;
  settings.p = static_cast<int>(s.batch_identities);
  settings.k = static_cast<int>(s.batch_instances);
  settings.seed = s.seed;
  settings.round = round;
  stats_.last_fedprox_mu = s.fedprox_mu;
  spdlog::info("{}round {}: training {} local epoch(s), lr {:g}, mu {:g}", log_prefix(), round,
               s.local_epochs, s.learning_rate, s.fedprox_mu);
  if (comm_) {
    post_command({{"kind", "task"}, {"settings", settings_to_json(settings)}});
    for (auto& [name, tensor] : global) {
      tensor = tensor.contiguous();
      comm_->broadcast(tensor, 0, "round " + std::to_string(round) + " global weights");
    }
  }

  auto last_beat = Clock::now();
  const std::string status = "training round " + std::to_string(round);
  reid::LocalRoundResult result;
  try {
    result = reid::train_local_round(
        model_, center_, *store_, train_config_, global, settings,
        [&](const reid::LocalRoundProgress&) {
          if (Clock::now() - last_beat >= config_.heartbeat_interval) {
            heartbeat(status);
            last_beat = Clock::now();
          }
          return !stop.load();
        },
        comm_);
  } catch (const proto::TransportError&) {
    throw;
  } catch (const dist::CollectiveError&) {
    throw;  // another rank of this site is gone: the site cannot train any more rounds
  } catch (const Error& e) {
    // Diverged or unusable settings: this round gets no Update (the aggregator retries or
    // proceeds without it); the site keeps serving, and the next Task reloads the weights.
    spdlog::error("{}round {} failed: {}", log_prefix(), round, e.what());
    try {
      client_->send(round, proto::ErrorMessage{proto::ErrorCode::kInternal,
                                               "site " + config_.site_id + ": " + e.what()});
    } catch (const proto::TransportError&) {
    }
    return;
  }
  last_task_weights_ = std::move(global);
  if (!result.completed) {
    spdlog::info("{}round {} abandoned after {} steps (stopping)", log_prefix(), round,
                 result.steps);
    return;
  }
  ++stats_.tasks_trained;
  stats_.last_proximal_loss = result.mean_loss.proximal;

  reid::NamedTensors shared = model_->shared_state();
  if (hooks_.before_update) {
    const UpdateDecision decision = hooks_.before_update(round, last_task_weights_, shared);
    if (decision.action != UpdateAction::kSend) {
      spdlog::warn("{}round {}: Update withheld by a fault hook{}", log_prefix(), round,
                   decision.action == UpdateAction::kVanish ? "; vanishing without a word" : "");
      vanished_ = decision.action == UpdateAction::kVanish;
      save_state(round);
      return;
    }
    if (decision.delay.count() > 0) {
      spdlog::info("{}round {}: holding the Update back for {} ms (straggler)", log_prefix(),
                   round, decision.delay.count());
      const auto until = Clock::now() + decision.delay;
      while (Clock::now() < until && !stop.load()) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - Clock::now());
        if (!sleep_unless_stopped(std::min(left, config_.heartbeat_interval), stop)) break;
        heartbeat(status);
      }
      if (stop.load()) return;
    }
  }
  proto::Update update;
  update.weights = proto::to_wire(shared);
  update.is_delta = false;
  update.sample_count = result.samples;
  update.metrics = {{"loss", result.mean_loss.total},
                    {"seconds", result.seconds},
                    {"images_per_second", result.images_per_second},
                    {"steps", static_cast<double>(result.steps)}};
  bool sent = false;
  auto backoff = config_.reconnect_initial;
  for (int attempt = 1; attempt <= kUpdateAttempts && !sent; ++attempt) {
    try {
      client_->send(round, update);
      sent = true;
    } catch (const proto::HandshakeError&) {
      throw;
    } catch (const proto::TransportError& e) {
      spdlog::warn("{}round {}: Update not sent (attempt {}/{}): {}", log_prefix(), round,
                   attempt, kUpdateAttempts, e.what());
      if (attempt < kUpdateAttempts && !sleep_unless_stopped(backoff, stop)) break;
      backoff = std::min(backoff * 2, config_.reconnect_max);
    }
  }
  if (sent) {
    ++stats_.updates_sent;
    spdlog::info("{}round {}: Update sent (loss {:.4f}, {} steps, {:.1f} s, {:.0f} images/s)",
                 log_prefix(), round, result.mean_loss.total, result.steps, result.seconds,
                 result.images_per_second);
  } else {
    ++stats_.updates_dropped;
    spdlog::warn("{}round {}: Update dropped; the aggregator will retry the round", log_prefix(),
                 round);
  }
  // Saved after every trained round, sent or not: the head is this site's own progress.
  save_state(round);
}

void Site::on_evaluate(std::uint64_t round, const proto::Evaluate& evaluate) {
  proto::EvalResult result;
  if (!config_.evaluate || store_->query.empty() || store_->gallery.empty()) {
    spdlog::info("{}round {}: Evaluate answered without metrics ({})", log_prefix(), round,
                 config_.evaluate ? "the store has no query/gallery split"
                                  : "training.evaluate is off");
  } else {
    reid::NamedTensors weights = evaluate.weights.empty() ? last_task_weights_
                                                          : proto::from_wire(evaluate.weights);
    if (weights.empty()) weights = model_->shared_state();
    const std::string problems = mismatch(model_->shared_state(), weights);
    if (!problems.empty()) {
      client_->send(round, proto::ErrorMessage{proto::ErrorCode::kRejected,
                                               "site " + config_.site_id +
                                                   ": Evaluate: model mismatch: " + problems});
      return;
    }
    // A second model: the training model, its head and its BatchNorm statistics stay as they
    // are, whatever the aggregator asks to evaluate.
    reid::ReidModel probe(reid::ModelOptions{train_config_.backbone, 0, true});
    probe->load_shared_state(weights);
    data::EvalLoaderOptions opts;
    opts.batch_size = train_config_.eval.batch_size;
    opts.workers = train_config_.profile.loader.workers;
    nlohmann::json m = reid::evaluate_model(probe, *store_, train_config_.profile.transform,
                                            train_config_.eval.metric, true, opts);
    result.query_count = store_->query.size();
    result.metrics = {{"mAP", m["instance"]["mAP"].get<double>()},
                      {"rank1", m["instance"]["rank1"].get<double>()},
                      {"rank5", m["instance"]["rank5"].get<double>()},
                      {"centroid_mAP", m["centroid"]["mAP"].get<double>()},
                      {"centroid_rank1", m["centroid"]["rank1"].get<double>()}};
    ++stats_.evaluations;
    spdlog::info("{}round {}: local mAP {:.4f} rank1 {:.4f} (centroid mAP {:.4f})", log_prefix(),
                 round, result.metrics["mAP"], result.metrics["rank1"],
                 result.metrics["centroid_mAP"]);
  }
  try {
    client_->send(round, result);
  } catch (const proto::HandshakeError&) {
    throw;
  } catch (const proto::TransportError& e) {
    spdlog::warn("{}round {}: EvalResult not sent: {}", log_prefix(), round, e.what());
  }
}

// True when the federation is over.
bool Site::handle(const proto::Decoded& message, const std::atomic<bool>& stop) {
  const proto::Envelope& env = message.envelope;
  if (const auto* task = std::get_if<proto::Task>(&env.payload)) {
    on_task(env.round, *task, stop);
  } else if (const auto* evaluate = std::get_if<proto::Evaluate>(&env.payload)) {
    on_evaluate(env.round, *evaluate);
  } else if (const auto* error = std::get_if<proto::ErrorMessage>(&env.payload)) {
    ++stats_.errors_received;
    spdlog::warn("{}the aggregator reported {} (round {}): {}", log_prefix(),
                 proto::to_string(error->code), env.round,
                 proto::printable_for_log(error->message));
  } else if (const auto* bye = std::get_if<proto::Bye>(&env.payload)) {
    const std::string reason = proto::printable_for_log(bye->reason);
    if (bye->reason.rfind("finished", 0) == 0) {
      spdlog::info("{}the federation is over: {}", log_prefix(), reason);
      return true;
    }
    spdlog::info("{}the aggregator is going away ({}); waiting for it to come back",
                 log_prefix(), reason);
  } else if (!std::holds_alternative<proto::Heartbeat>(env.payload)) {
    spdlog::warn("{}ignoring an unexpected {} from the aggregator", log_prefix(),
                 proto::to_string(env.type()));
  }
  return false;
}

void Site::check_keys() const {
  if (config_.security != proto::Security::kCurve) return;
  // Before hours of de-identification, not after: a missing or unsafe key is a setup mistake.
  try {
    proto::read_public_key(config_.server_public_key_file);
    proto::read_secret_key(config_.secret_key_file);  // wiped when it goes out of scope
  } catch (const Error& e) {
    throw Error(std::string(e.what()) + " (aggregator.public_key / secret_key in '" +
                config_.file.string() + "'; create keys with `ppreid keygen --out PREFIX`)");
  }
}

SiteExit Site::run(const std::atomic<bool>& stop) {
  if (follower()) return follow(stop);
  SiteExit exit = SiteExit::kStopped;
  try {
    exit = lead(stop);
  } catch (const dist::CollectiveError&) {
    throw;  // the others are gone or failing themselves
  } catch (const std::exception& e) {
    if (comm_) {
      try {
        post_command({{"kind", "exit"}, {"reason", "failed"}, {"message", e.what()}});
      } catch (const std::exception&) {
      }
    }
    throw;
  }
  if (comm_)
    post_command({{"kind", "exit"}, {"reason", exit == SiteExit::kFinished ? "finished" : "stopped"}});
  return exit;
}

// ---- data-parallel ranks ---------------------------------------------------------------------

void Site::post_command(const nlohmann::json& command) {
  comm_->post("site/command/" + std::to_string(++commands_posted_), command.dump());
}

std::optional<std::string> Site::await_post(const std::string& key,
                                            const std::atomic<bool>& stop) {
  // Polled, not a collective wait: rank 0 may spend hours between Tasks, and this notices both a
  // stop signal and rank 0's death (its store goes away) within a poll interval.
  while (!stop.load()) {
    if (auto value = comm_->poll(key)) return value;
    std::this_thread::sleep_for(50ms);
  }
  return std::nullopt;
}

void Site::share_start_state() {
  // Rank 0's model (its saved head, centres and initial weights) is every rank's start.
  reid::broadcast_module_state(*model_, *comm_);
  reid::broadcast_module_state(*center_, *comm_);
}

SiteExit Site::follow(const std::atomic<bool>& stop) {
  spdlog::info("{}waiting for rank 0 to prepare the store", log_prefix());
  if (!await_post("site/ready", stop)) return SiteExit::kStopped;
  if (!prepared_) prepare();
  share_start_state();
  for (std::uint64_t n = 1;; ++n) {
    const auto text = await_post("site/command/" + std::to_string(n), stop);
    if (!text) return SiteExit::kStopped;
    const nlohmann::json command = nlohmann::json::parse(*text);
    const std::string kind = command.at("kind").get<std::string>();
    if (kind == "exit") {
      const std::string reason = command.at("reason").get<std::string>();
      if (reason == "failed")
        throw Error("rank 0 of site " + config_.site_id + " failed (" +
                    command.value("message", std::string("?")) + "); see its log");
      spdlog::info("{}rank 0 says the site is done ({})", log_prefix(), reason);
      return reason == "finished" ? SiteExit::kFinished : SiteExit::kStopped;
    }
    if (kind != "task")
      throw Error("rank 0 posted an unknown command '" + kind +
                  "'; run the same ppreid version on every rank");
    const reid::LocalRoundSettings settings = settings_from_json(command.at("settings"));
    reid::NamedTensors global = model_->shared_state();
    for (auto& [name, tensor] : global)
      comm_->broadcast(tensor, 0, "round " + std::to_string(settings.round) + " global weights");
    try {
      const reid::LocalRoundResult result = reid::train_local_round(
          model_, center_, *store_, train_config_, global, settings, nullptr, comm_);
      if (result.completed) ++stats_.tasks_trained;
    } catch (const dist::CollectiveError&) {
      throw;
    } catch (const Error& e) {
      // Rank 0 failed the same way (the checks and the loss are the same on every rank) and
      // reports it to the aggregator; wait for its next command.
      spdlog::error("{}round {} failed: {}", log_prefix(), settings.round, e.what());
    }
  }
}

SiteExit Site::lead(const std::atomic<bool>& stop) {
  check_keys();
  if (!prepared_) prepare();
  if (comm_) {
    comm_->post("site/ready", "1");
    share_start_state();
  }
  connect(stop);
  if (!client_) return SiteExit::kStopped;  // stopped while waiting for the aggregator
  say_hello();
  auto next_beat = Clock::now() + config_.heartbeat_interval;
  auto backoff = config_.reconnect_initial;
  while (!stop.load()) {
    std::optional<proto::Decoded> message;
    try {
      const auto until_beat =
          std::chrono::duration_cast<std::chrono::milliseconds>(next_beat - Clock::now());
      message = client_->receive(std::clamp<std::chrono::milliseconds>(until_beat, 1ms, kPoll));
      backoff = config_.reconnect_initial;
    } catch (const proto::HandshakeError& e) {
      throw Error("the aggregator at " + config_.endpoint + " refused a reconnect: " + e.what() +
                  "; check aggregator.public_key '" + config_.server_public_key_file.string() +
                  "' and the aggregator's allow-list");
    } catch (const zmq::error_t& e) {
      if (e.num() != EINTR) throw;
      continue;  // a signal interrupted the wait; the loop condition looks at the stop flag
    } catch (const proto::TransportError& e) {
      spdlog::warn("{}{}; backing off {} ms", log_prefix(), e.what(), backoff.count());
      if (!sleep_unless_stopped(backoff, stop)) break;
      backoff = std::min(backoff * 2, config_.reconnect_max);
      continue;
    }
    // libzmq reconnected on its own: the aggregator may be a new process that forgot us.
    if (const std::uint64_t h = client_->handshakes(); h > handshakes_seen_) {
      handshakes_seen_ = h;
      spdlog::info("{}reconnected to the aggregator; saying Hello again", log_prefix());
      say_hello();
    }
    if (message && handle(*message, stop)) return SiteExit::kFinished;
    if (vanished_) {
      client_.reset();  // closes the connection: no Bye, like a killed process
      return SiteExit::kVanished;
    }
    if (Clock::now() >= next_beat) {
      // A Hello that could not be sent is retried in place of the heartbeat.
      if (hello_pending_) say_hello();
      else heartbeat("idle");
      next_beat = Clock::now() + config_.heartbeat_interval;
    }
  }
  try {
    client_->send(0, proto::Bye{"shutdown: site " + config_.site_id + " stopping"});
  } catch (const proto::TransportError& e) {
    spdlog::warn("{}Bye not sent: {}", log_prefix(), e.what());
  }
  return SiteExit::kStopped;
}

}  // namespace ppreid::client
