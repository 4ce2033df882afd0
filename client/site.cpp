#include "client/site.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cerrno>
#include <chrono>

#include "client/site_internal.h"
#include "core/util/error.h"
#include "protocols/text.h"

// The site runtime is split by stage: this file connects and runs the federation loop (lead);
// site_prepare.cpp builds the store and the model and keeps the head and centres between rounds;
// site_rounds.cpp trains a Task, answers Evaluate and drives the data-parallel ranks.

namespace ppreid::client {
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

Site::Site(SiteConfig config, SiteHooks hooks)
    : config_(std::move(config)), hooks_(std::move(hooks)) {}
Site::~Site() = default;

std::string Site::log_prefix() const {
  return "site " + config_.site_id +
         (comm_ ? " rank " + std::to_string(comm_->rank()) : std::string()) + ": ";
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
      if (!detail::sleep_unless_stopped(backoff, stop)) return;
      backoff = std::min(backoff * 2, config_.reconnect_max);
    }
  }
}

void Site::say_hello() {
  proto::DatasetSummary summary = report_.summary;
  if (hooks_.claimed_samples) summary.images = hooks_.claimed_samples(0, summary.images);
  try {
    client_->send(0, proto::Hello{config_.site_id, summary});
    hello_pending_ = false;
    ++stats_.hellos;
    spdlog::info("{}Hello sent ({} train images{}, {} identities, method {})", log_prefix(),
                 summary.images,
                 summary.images != report_.summary.images
                     ? " claimed by a fault hook, " + std::to_string(report_.summary.images) +
                           " real"
                     : std::string(),
                 summary.identities, summary.deid_method);
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

// ---- the federation loop --------------------------------------------------------------------

// True when the federation is over.
bool Site::handle(const proto::Decoded& message, const std::atomic<bool>& stop) {
  const proto::Envelope& env = message.envelope;
  if (const auto* task = std::get_if<proto::Task>(&env.payload)) {
    on_task(env.round, *task, stop);
  } else if (const auto* evaluate = std::get_if<proto::Evaluate>(&env.payload)) {
    on_evaluate(env.round, *evaluate);
  } else if (on_secure_message(env)) {
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
      message = client_->receive(
          std::clamp<std::chrono::milliseconds>(until_beat, 1ms, detail::kPoll));
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
      if (!detail::sleep_unless_stopped(backoff, stop)) break;
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
