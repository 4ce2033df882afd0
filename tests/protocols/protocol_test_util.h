#pragma once

#include <spdlog/sinks/base_sink.h>
#include <spdlog/spdlog.h>

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <zmq_addon.hpp>

#include <chrono>
#include <filesystem>
#include <optional>

#include "protocols/codec.h"
#include "protocols/keys.h"
#include "protocols/message.h"

namespace ppreid::testing {

// Deterministic bytes for tensor data.
inline std::vector<std::uint8_t> pattern_bytes(std::size_t n, std::uint32_t seed) {
  std::vector<std::uint8_t> out(n);
  std::uint32_t x = seed * 2654435761u + 1;
  for (auto& b : out) {
    x ^= x << 13, x ^= x >> 17, x ^= x << 5;
    b = static_cast<std::uint8_t>(x);
  }
  return out;
}

inline proto::WireTensor wire_tensor(std::string name, proto::DType dtype,
                                     std::vector<std::int64_t> shape, std::uint32_t seed) {
  std::uint64_t bytes = 0;
  proto::tensor_byte_count(shape, dtype, UINT64_MAX, bytes);
  return {std::move(name), dtype, std::move(shape), pattern_bytes(bytes, seed)};
}

// A few tensors: several dtypes, a scalar, an empty one, one larger than a small chunk.
inline proto::NamedWireTensors sample_tensors(std::uint32_t seed = 1) {
  using proto::DType;
  return {wire_tensor("backbone.conv1.weight", DType::kF32, {8, 3, 3, 3}, seed),
          wire_tensor("backbone.bn1.num_batches_tracked", DType::kI64, {}, seed + 1),
          wire_tensor("neck.bn.weight", DType::kF16, {16}, seed + 2),
          wire_tensor("neck.empty", DType::kBF16, {0, 4}, seed + 3),
          wire_tensor("mask", DType::kBool, {5}, seed + 4),
          wire_tensor("ids", DType::kU8, {3, 7}, seed + 5),
          wire_tensor("double", DType::kF64, {2, 2}, seed + 6)};
}

// One envelope of every message type, as a site or the aggregator would send it.
inline std::vector<proto::Envelope> one_of_each_type(const std::string& sender = "site-a",
                                                    const std::string& federation = "fed-test") {
  using namespace proto;
  std::vector<Payload> payloads;
  payloads.emplace_back(Hello{sender, DatasetSummary{1200, 100, 6, "dp", 1e5}});
  Task task;
  task.weights = sample_tensors(1);
  task.settings = TrainingSettings{2, 3.5e-4, 5e-4, 0.01, 8, 4, 7};
  task.secure_aggregation = secagg::Params{8.0, std::uint64_t{1} << 22, 32, 1200.0, 0.5, 5};
  payloads.emplace_back(std::move(task));
  Update update;
  update.weights = sample_tensors(2);
  update.is_delta = true;
  update.sample_count = 1200;
  update.metrics = {{"loss", 1.25}, {"seconds", 12.5}};
  payloads.emplace_back(std::move(update));
  payloads.emplace_back(Evaluate{sample_tensors(3)});
  payloads.emplace_back(EvalResult{202, {{"mAP", 0.5}, {"rank1", 0.75}}});
  payloads.emplace_back(Heartbeat{"training"});
  payloads.emplace_back(ErrorMessage{ErrorCode::kRejected, "update has NaN"});
  payloads.emplace_back(Bye{"shutting down"});
  const std::vector<std::uint8_t> k1(32, 0x11), k2(32, 0x22), sealed(120, 0x33), share(44, 0x44);
  payloads.emplace_back(SecAggKeys{k1, k2});
  payloads.emplace_back(SecAggKeyList{2, {{sender, k1, k2}, {"site-b", k2, k1}}});
  payloads.emplace_back(SecAggShares{{{"site-b", sealed}}});
  payloads.emplace_back(SecAggShareList{{{"site-b", sealed}, {"site-c", sealed}}});
  payloads.emplace_back(MaskedUpdate{{wire_tensor("masked", DType::kI32, {1002}, 9)}});
  payloads.emplace_back(UnmaskRequest{{sender, "site-b"}, {"site-c"}});
  payloads.emplace_back(UnmaskShares{{{sender, SecretKind::kSelfMaskSeed, share},
                                      {"site-c", SecretKind::kMaskKey, share}}});
  std::vector<Envelope> out;
  for (std::size_t i = 0; i < payloads.size(); ++i) {
    Envelope e;
    e.federation_id = federation;
    e.round = 3 + i;
    e.sender_id = sender;
    e.payload = std::move(payloads[i]);
    out.push_back(std::move(e));
  }
  return out;
}

// Frames as owned byte strings, which tests can mutate.
inline std::vector<std::string> to_strings(const std::vector<zmq::message_t>& frames) {
  std::vector<std::string> out;
  for (const auto& f : frames) out.push_back(f.to_string());
  return out;
}

inline std::vector<proto::FrameView> views_of(const std::vector<std::string>& frames) {
  std::vector<proto::FrameView> out;
  for (const auto& f : frames)
    out.emplace_back(reinterpret_cast<const std::uint8_t*>(f.data()), f.size());
  return out;
}

inline proto::Decoded decode_strings(const std::vector<std::string>& frames,
                                     const proto::CodecOptions& options = {}) {
  return proto::decode(views_of(frames), options);
}

// Captures everything logged through spdlog's default logger while it lives (all threads).
class LogCapture {
 public:
  LogCapture() : previous_(spdlog::default_logger()), sink_(std::make_shared<Sink>()) {
    auto logger = std::make_shared<spdlog::logger>("capture", sink_);
    logger->set_level(spdlog::level::trace);
    spdlog::set_default_logger(logger);
  }
  ~LogCapture() { spdlog::set_default_logger(previous_); }
  LogCapture(const LogCapture&) = delete;
  LogCapture& operator=(const LogCapture&) = delete;
  std::string text() const { return sink_->contents(); }

 private:
  class Sink : public spdlog::sinks::base_sink<std::mutex> {
   public:
    std::string contents() {
      std::lock_guard lock(mutex_);
      return text_;
    }

   protected:
    void sink_it_(const spdlog::details::log_msg& msg) override {
      text_.append(msg.payload.data(), msg.payload.size());
      text_ += '\n';
    }
    void flush_() override {}

   private:
    std::string text_;
  };

  std::shared_ptr<spdlog::logger> previous_;
  std::shared_ptr<Sink> sink_;
};

// A DEALER that speaks CURVE but sends whatever frames a test gives it.
class RawSite {
 public:
  RawSite(const std::string& endpoint, const std::filesystem::path& secret_file,
          const proto::PublicKey& server_key)
      : socket_(context_, zmq::socket_type::dealer) {
    const proto::KeyPair mine = proto::read_secret_key(secret_file);
    socket_.set(zmq::sockopt::linger, 0);
    socket_.set(zmq::sockopt::curve_serverkey, server_key.z85());
    socket_.set(zmq::sockopt::curve_publickey, mine.public_key.z85());
    socket_.set(zmq::sockopt::curve_secretkey, mine.secret_key.z85());
    socket_.connect(endpoint);
  }
  void send(const std::vector<std::string>& frames) {
    std::vector<zmq::const_buffer> parts;
    for (const auto& f : frames) parts.push_back(zmq::buffer(f));
    ASSERT_TRUE(zmq::send_multipart(socket_, parts));
  }
  void send(const proto::Envelope& e, const proto::CodecOptions& options = {}) {
    send(to_strings(proto::encode(e, options)));
  }
  std::optional<proto::Decoded> receive(std::chrono::milliseconds timeout) {
    zmq::pollitem_t item{socket_.handle(), 0, ZMQ_POLLIN, 0};
    if (zmq::poll(&item, 1, timeout) == 0) return std::nullopt;
    std::vector<zmq::message_t> parts;
    if (!zmq::recv_multipart(socket_, std::back_inserter(parts))) return std::nullopt;
    return proto::decode(proto::frame_views(parts));
  }

 private:
  zmq::context_t context_;
  zmq::socket_t socket_;
};

}  // namespace ppreid::testing
