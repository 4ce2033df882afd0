#pragma once

// What the files of the aggregator daemon share (aggregator.cpp: lifecycle and the run loop;
// aggregator_rounds.cpp: one round and its evaluation; aggregator_sites.cpp: messages from the
// sites, the live-site table and status.json). Not part of the aggregator's interface.

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "aggregator/aggregator.h"
#include "aggregator/round_record.h"
#include "protocols/message.h"
#include "protocols/secagg/server_session.h"
#include "protocols/transport.h"

namespace ppreid::agg {

struct Aggregator::LiveSite {
  proto::Peer peer;
  proto::Hello hello;
  bool said_hello = false;
  std::string status = "connected";
  std::chrono::steady_clock::time_point last_seen;
};

struct Aggregator::RoundProgress {
  std::int64_t round = 0;
  int attempt = 1;
  std::set<std::string> asked;
  // sent an accepted update, or may no longer send one (refused max_refusals times, or refused
  // with no resend grace), or reported an error
  std::set<std::string> answered;
  // sites whose update was refused: how often, and when last (the round waits for a resend
  // until resend_grace has passed)
  std::map<std::string, int> refusals;
  std::map<std::string, std::chrono::steady_clock::time_point> refused_at;
  std::optional<proto::Task> task;  // re-sent to an asked site that reconnects mid-round
  RoundRecord record;
  double loss_weighted = 0.0;
  std::int64_t loss_samples = 0;
  bool evaluating = false;
  std::map<std::string, proto::EvalResult> eval_results;
  std::set<std::string> evaluated;  // the keys of eval_results
  // Secure aggregation: the round's session (null when off) and, once unmasked, the sum.
  std::unique_ptr<secagg::ServerSession> secure;
  std::optional<secagg::SecureSum> secure_sum;
};

namespace detail {

inline constexpr std::chrono::milliseconds kPollSlice{200};

inline double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

inline std::string join(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& s : items) out += (out.empty() ? "" : ", ") + s;
  return out.empty() ? "none" : out;
}

}  // namespace detail
}  // namespace ppreid::agg
