// Secure aggregation's cost against plain FedAvg, for one round: what a site sends and spends,
// what the aggregator spends and holds. Every message is really encoded (protocols/codec, the
// bytes that would cross the wire) and decoded by the aggregator; the sites' work runs in this
// process one after another and is timed per site (thread CPU time), as each site would spend it
// on its own machine.
//   Round/<model>/<sites>/<dropout %>: model 0 = the `small` profile's shared ReID model
//   (resnet_small + BNNeck), 1 = torchvision ResNet-50's parameter count (25,557,032).
// Dropouts: that fraction of the sites (rounded, at least one when > 0) drops after sending its
// shares and before its masked update: the costliest case for the aggregator, which must rebuild
// each one's mask key and regenerate its pairwise masks with every surviving neighbour.
// Counters (per round): site_MB (the largest site's bytes sent) and site_cpu_s (mean over the
// surviving sites), agg_cpu_s, agg_peak_MB (the aggregator's peak heap through C++ new: its
// state, the message it is decoding, the secrets it rebuilds), and the same for
// plain FedAvg (plain_*), plus bytes_x and cost_x: the secure/plain ratios of a site's bytes and of
// the round's critical path (the slowest site's CPU + the aggregator's CPU + the largest site's
// bytes at the transport's measured loopback CURVE speed, `--transport_mb_s`, default 250).
//   build/bench/bench_secagg [--benchmark_filter=Round/1/8/]
#include <benchmark/benchmark.h>
#include <spdlog/spdlog.h>
#include <time.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <new>
#include <fstream>
#include <random>
#include <string>

#include "core/reid/model.h"
#include "core/reid/train_config.h"
#include "protocols/codec.h"
#include "protocols/secagg/graph.h"
#include "protocols/secagg/server_session.h"
#include "protocols/secagg/site_session.h"

namespace {

using namespace ppreid;
double g_transport_mb_s = 250.0;

double thread_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

// Heap bytes in use through C++ new (the protocol's vectors, decoded messages) and their peak
// since the last reset: the aggregator's memory is what it allocates during its own steps.
std::atomic<std::int64_t> g_heap{0}, g_heap_peak{0};
void reset_peak() { g_heap_peak = g_heap.load(); }

std::size_t model_values(int model) {
  if (model == 1) return 25'557'032;
  static const std::size_t small = [] {
    const reid::TrainConfig c =
        reid::load_train_config(std::string(PPREID_SOURCE_DIR) + "/configs/train/small.yaml");
    reid::ReidModel m(reid::ModelOptions{c.backbone, 0, true});
    std::size_t n = 0;
    for (const auto& [name, t] : m->shared_state()) n += static_cast<std::size_t>(t.numel());
    return n;
  }();
  return small;
}

struct Encoded {
  std::vector<zmq::message_t> frames;
  std::size_t bytes = 0;
};

Encoded encode(const std::string& sender, std::uint64_t round, proto::Payload payload) {
  Encoded e;
  proto::Envelope env;
  env.federation_id = "bench";
  env.round = round;
  env.sender_id = sender;
  env.payload = std::move(payload);
  e.frames = proto::encode(env);
  for (const auto& f : e.frames) e.bytes += f.size();
  return e;
}

template <class T>
T decode_as(const Encoded& e) {
  return std::get<T>(proto::decode(proto::frame_views(e.frames)).envelope.payload);
}

std::vector<float> random_change(std::size_t n, std::uint64_t seed) {
  std::vector<float> v(n);
  std::mt19937 rng(static_cast<std::uint32_t>(seed));
  std::normal_distribution<float> normal(0.f, 1e-3f);
  for (auto& x : v) x = normal(rng);
  return v;
}

struct Cost {
  double site_bytes = 0, site_cpu = 0, max_site_cpu = 0, agg_cpu = 0, agg_peak = 0;
};

Cost plain_round(std::size_t values, int sites, const std::vector<std::vector<float>>& changes) {
  Cost c;
  std::vector<Encoded> inbox;
  for (int i = 0; i < sites; ++i) {
    const double t0 = thread_cpu_seconds();
    proto::Update u;
    proto::WireTensor t{"delta", proto::DType::kF32, {static_cast<std::int64_t>(values)},
                        std::vector<std::uint8_t>(values * 4)};
    std::memcpy(t.data.data(), changes[i].data(), values * 4);
    u.weights.push_back(std::move(t));
    u.is_delta = true;
    u.sample_count = 100;
    inbox.push_back(encode("site-" + std::to_string(i), 1, std::move(u)));
    const double cpu = thread_cpu_seconds() - t0;
    c.site_cpu += cpu / sites;
    c.max_site_cpu = std::max(c.max_site_cpu, cpu);
    c.site_bytes = static_cast<double>(inbox.back().bytes);
  }
  const std::int64_t base = g_heap;
  reset_peak();
  const double t0 = thread_cpu_seconds();
  std::vector<double> sum(values, 0.0);  // FedAvg's float64 running sum
  for (const Encoded& e : inbox) {
    const auto u = decode_as<proto::Update>(e);
    const float* x = reinterpret_cast<const float*>(u.weights[0].data.data());
    for (std::size_t k = 0; k < values; ++k) sum[k] += 100.0 * x[k];
  }
  for (auto& s : sum) s /= 100.0 * sites;
  c.agg_cpu = thread_cpu_seconds() - t0;
  c.agg_peak = static_cast<double>(g_heap_peak - base);
  benchmark::DoNotOptimize(sum.data());
  return c;
}

Cost secure_round(std::size_t values, int sites, int dropped,
                  const std::vector<std::vector<float>>& changes) {
  Cost c;
  std::vector<std::string> ids;
  for (int i = 0; i < sites; ++i) ids.push_back("site-" + std::to_string(100 + i));
  secagg::Params params;
  params.max_weight = 100;
  params.sites = static_cast<std::uint32_t>(sites);
  const secagg::RoundContext ctx{"bench", 1};
  std::vector<double> cpu(sites, 0.0), bytes(sites, 0.0);
  auto site_work = [&](int i, auto&& f) {
    const double t0 = thread_cpu_seconds();
    f();
    cpu[i] += thread_cpu_seconds() - t0;
  };
  double agg = 0;
  std::int64_t owned = 0;  // what the aggregator's steps so far left allocated (its state)
  double peak = 0;
  auto agg_work = [&](auto&& f) {
    const std::int64_t start = g_heap;
    reset_peak();
    const double t0 = thread_cpu_seconds();
    f();
    agg += thread_cpu_seconds() - t0;
    peak = std::max(peak, static_cast<double>(owned + (g_heap_peak - start)));
    owned += g_heap - start;
  };
  std::unique_ptr<secagg::ServerSession> server;
  agg_work([&] {
    server = std::make_unique<secagg::ServerSession>(
        ctx, params, std::set<std::string>(ids.begin(), ids.end()), values,
        secagg::ServerOptions{secagg::neighbours_for(sites, 0.3, 16), 0, 2, 7});
  });
  std::vector<std::unique_ptr<secagg::SiteSession>> s(sites);
  std::vector<Encoded> inbox;
  for (int i = 0; i < sites; ++i)
    site_work(i, [&] {
      s[i] = std::make_unique<secagg::SiteSession>(ctx, ids[i], params, sites);
      inbox.push_back(encode(ids[i], 1, s[i]->keys()));
      bytes[i] += static_cast<double>(inbox.back().bytes);
    });
  std::map<std::string, Encoded> out;
  agg_work([&] {
    for (int i = 0; i < sites; ++i) server->add_keys(ids[i], decode_as<proto::SecAggKeys>(inbox[i]));
    for (auto& [id, list] : server->close_keys()) out[id] = encode("aggregator", 1, list);
  });
  inbox.clear();
  for (int i = 0; i < sites; ++i)
    site_work(i, [&] {
      inbox.push_back(encode(ids[i], 1, s[i]->share_keys(decode_as<proto::SecAggKeyList>(out.at(ids[i])))));
      bytes[i] += static_cast<double>(inbox.back().bytes);
    });
  agg_work([&] {
    out.clear();
    for (int i = 0; i < sites; ++i) server->add_shares(ids[i], decode_as<proto::SecAggShares>(inbox[i]));
    for (auto& [id, list] : server->close_shares()) out[id] = encode("aggregator", 1, list);
  });
  inbox.clear();
  for (int i = dropped; i < sites; ++i)  // the first `dropped` sites drop here
    site_work(i, [&] {
      inbox.push_back(encode(ids[i], 1,
                             s[i]->mask(decode_as<proto::SecAggShareList>(out.at(ids[i])),
                                        changes[i], 100.0, 1.0)));
      bytes[i] += static_cast<double>(inbox.back().bytes);
    });
  agg_work([&] {
    out.clear();
    for (int i = dropped; i < sites; ++i)
      server->add_masked(ids[i], decode_as<proto::MaskedUpdate>(inbox[i - dropped]));
    for (auto& [id, r] : server->close_masked()) out[id] = encode("aggregator", 1, r);
  });
  inbox.clear();
  std::vector<std::string> answering;
  for (int i = dropped; i < sites; ++i)
    site_work(i, [&] {
      inbox.push_back(encode(ids[i], 1, s[i]->unmask(decode_as<proto::UnmaskRequest>(out.at(ids[i])))));
      bytes[i] += static_cast<double>(inbox.back().bytes);
      answering.push_back(ids[i]);
    });
  secagg::SecureSum sum;
  agg_work([&] {
    for (std::size_t j = 0; j < answering.size(); ++j)
      server->add_unmask(answering[j], decode_as<proto::UnmaskShares>(inbox[j]));
    sum = server->finish();
  });
  c.agg_peak = peak;
  c.agg_cpu = agg;
  const int survivors = sites - dropped;
  for (int i = dropped; i < sites; ++i) {
    c.site_cpu += cpu[i] / survivors;
    c.max_site_cpu = std::max(c.max_site_cpu, cpu[i]);
    c.site_bytes = std::max(c.site_bytes, bytes[i]);
  }
  benchmark::DoNotOptimize(sum.mean.data());
  return c;
}

void BM_Round(benchmark::State& state) {
  const int model = static_cast<int>(state.range(0));
  const int sites = static_cast<int>(state.range(1));
  const double dropout = static_cast<double>(state.range(2)) / 100.0;
  const int dropped = dropout > 0 ? std::max(1, static_cast<int>(std::lround(dropout * sites))) : 0;
  const std::size_t values = model_values(model);
  std::vector<std::vector<float>> changes;
  for (int i = 0; i < sites; ++i) changes.push_back(random_change(values, 1000 + i));
  Cost plain, secure;
  for (auto _ : state) {
    plain = plain_round(values, sites, changes);
    secure = secure_round(values, sites, dropped, changes);
  }
  const double rate = g_transport_mb_s * 1e6;
  const double plain_path = plain.max_site_cpu + plain.agg_cpu + plain.site_bytes / rate;
  const double secure_path = secure.max_site_cpu + secure.agg_cpu + secure.site_bytes / rate;
  state.counters["values"] = static_cast<double>(values);
  state.counters["dropped"] = dropped;
  state.counters["site_MB"] = secure.site_bytes / 1e6;
  state.counters["site_cpu_s"] = secure.site_cpu;
  state.counters["agg_cpu_s"] = secure.agg_cpu;
  state.counters["agg_peak_MB"] = secure.agg_peak / 1e6;
  state.counters["plain_site_MB"] = plain.site_bytes / 1e6;
  state.counters["plain_site_cpu_s"] = plain.site_cpu;
  state.counters["plain_agg_cpu_s"] = plain.agg_cpu;
  state.counters["plain_agg_peak_MB"] = plain.agg_peak / 1e6;
  state.counters["bytes_x"] = secure.site_bytes / plain.site_bytes;
  state.counters["cost_x"] = secure_path / plain_path;
}

// small model: 3, 10, 50 sites; ResNet-50 size: 8 sites; each without and with 30% dropouts.
BENCHMARK(BM_Round)
    ->ArgsProduct({{0}, {3, 10, 50}, {0, 30}})
    ->Args({1, 8, 0})
    ->Args({1, 8, 30})
    ->Iterations(1)
    ->Unit(benchmark::kSecond);

}  // namespace

// Every allocation carries its size in a 16-byte header, so that frees can be counted.
void* operator new(std::size_t n) {
  auto* p = static_cast<std::uint8_t*>(std::malloc(n + 16));
  if (!p) throw std::bad_alloc();
  std::memcpy(p, &n, sizeof n);
  const std::int64_t now = g_heap += static_cast<std::int64_t>(n);
  for (std::int64_t peak = g_heap_peak; now > peak && !g_heap_peak.compare_exchange_weak(peak, now);) {
  }
  return p + 16;
}
void operator delete(void* q) noexcept {
  if (!q) return;
  auto* p = static_cast<std::uint8_t*>(q) - 16;
  std::size_t n = 0;
  std::memcpy(&n, p, sizeof n);
  g_heap -= static_cast<std::int64_t>(n);
  std::free(p);
}
void operator delete(void* q, std::size_t) noexcept { operator delete(q); }

int main(int argc, char** argv) {
  spdlog::set_level(spdlog::level::warn);
  for (int i = 1; i < argc; ++i)
    if (std::strncmp(argv[i], "--transport_mb_s=", 17) == 0) g_transport_mb_s = std::stod(argv[i] + 17);
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  return 0;
}
