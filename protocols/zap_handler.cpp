#include "protocols/zap_handler.h"

#include <spdlog/spdlog.h>
#include <zmq_addon.hpp>

#include <array>
#include <cstring>
#include <vector>

#include "core/util/error.h"
#include "protocols/text.h"

namespace ppreid::proto {
namespace {

constexpr const char* kZapEndpoint = "inproc://zeromq.zap.01";
constexpr auto kRefusalLogInterval = std::chrono::seconds(10);
constexpr std::size_t kMaxRefusalLogEntries = 1024;  // random keys cannot grow it without bound

std::string wake_endpoint(const void* self) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "inproc://ppreid-zap-wake-%p", self);
  return buf;
}

}  // namespace

ZapHandler::ZapHandler(zmq::context_t& context, AllowList allow_list)
    : socket_(context, zmq::socket_type::rep),
      wake_rx_(context, zmq::socket_type::pair),
      wake_tx_(context, zmq::socket_type::pair),
      allow_list_(std::make_shared<const AllowList>(std::move(allow_list))) {
  try {
    socket_.set(zmq::sockopt::linger, 0);
    socket_.bind(kZapEndpoint);
  } catch (const zmq::error_t& e) {
    throw Error(std::string("cannot start the ZAP authentication handler on ") + kZapEndpoint +
                ": " + e.what() + " (only one per ZeroMQ context)");
  }
  const std::string wake = wake_endpoint(this);
  wake_rx_.bind(wake);
  wake_tx_.connect(wake);
  wake_tx_.set(zmq::sockopt::linger, 0);
  wake_rx_.set(zmq::sockopt::linger, 0);
  thread_ = std::thread([this] { run(); });
}

ZapHandler::~ZapHandler() {
  try {
    wake_tx_.send(zmq::str_buffer("stop"), zmq::send_flags::dontwait);
  } catch (...) {
  }
  if (thread_.joinable()) thread_.join();
}

void ZapHandler::set_allow_list(AllowList allow_list) {
  auto next = std::make_shared<const AllowList>(std::move(allow_list));
  std::lock_guard lock(allow_mutex_);
  allow_list_ = std::move(next);
}

void ZapHandler::run() {
  std::array<zmq::pollitem_t, 2> items{{{socket_.handle(), 0, ZMQ_POLLIN, 0},
                                        {wake_rx_.handle(), 0, ZMQ_POLLIN, 0}}};
  for (;;) {
    try {
      zmq::poll(items.data(), items.size(), std::chrono::milliseconds(-1));
      if (items[1].revents & ZMQ_POLLIN) return;
      if (items[0].revents & ZMQ_POLLIN) handle_request();
    } catch (const zmq::error_t& e) {
      if (e.num() == ETERM) return;
      spdlog::error("ZAP handler: {}", e.what());
    } catch (const std::exception& e) {
      spdlog::error("ZAP handler: {}", e.what());
    }
  }
}

void ZapHandler::handle_request() {
  std::vector<zmq::message_t> request;
  if (!zmq::recv_multipart(socket_, std::back_inserter(request), zmq::recv_flags::dontwait))
    return;
  // RFC 27: version, request id, domain, address, routing id, mechanism, credentials...
  // A REP socket must answer every request, so a malformed one gets a 500.
  const bool well_formed = request.size() >= 6 && request[0].to_string_view() == "1.0";
  std::string status = "500", text = "malformed ZAP request", user_id;
  if (well_formed) {
    const std::string address = printable_for_log(request[3].to_string_view(), 64);
    const std::string_view mechanism = request[5].to_string_view();
    if (mechanism != "CURVE" || request.size() != 7 || request[6].size() != 32) {
      status = "400";
      text = "CURVE required";
      ++refused_;
      spdlog::warn("refused a {} connection from {}: the aggregator admits CURVE clients only",
                   printable_for_log(mechanism, 16), address);
    } else {
      std::array<std::uint8_t, 32> raw{};
      std::memcpy(raw.data(), request[6].data(), raw.size());
      const PublicKey key = PublicKey::from_bytes(raw);
      std::shared_ptr<const AllowList> list;
      {
        std::lock_guard lock(allow_mutex_);
        list = allow_list_;
      }
      if (auto site = list->site_for(key)) {
        status = "200";
        text = "OK";
        user_id = *site;
        ++admitted_;
        spdlog::info("site '{}' authenticated from {} (public key {})", *site, address, key.z85());
      } else {
        status = "400";
        text = "public key not in the allow-list";
        ++refused_;
        auto now = std::chrono::steady_clock::now();
        if (refusal_log_.size() >= kMaxRefusalLogEntries) refusal_log_.clear();
        auto [it, first] = refusal_log_.try_emplace(key.z85());
        if (first || now - it->second.last >= kRefusalLogInterval) {
          spdlog::warn("refused a CURVE client from {}: public key {} is not in the allow-list{}{}",
                       address, key.z85(),
                       list->dir().empty() ? "" : " '" + list->dir().string() + "'",
                       it->second.suppressed
                           ? " (" + std::to_string(it->second.suppressed) +
                                 " more attempts since the last warning)"
                           : "");
          it->second.last = now;
          it->second.suppressed = 0;
        } else {
          ++it->second.suppressed;
        }
      }
    }
  }
  const zmq::const_buffer request_id = request.size() > 1
                                           ? zmq::buffer(request[1].data(), request[1].size())
                                           : zmq::const_buffer(nullptr, 0);
  std::array<zmq::const_buffer, 6> reply{zmq::str_buffer("1.0"), request_id,
                                         zmq::buffer(status),
                                         zmq::buffer(text),
                                         zmq::buffer(user_id),
                                         zmq::const_buffer(nullptr, 0)};
  zmq::send_multipart(socket_, reply);
}

}  // namespace ppreid::proto
