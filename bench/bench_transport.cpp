// Federation wire and transport at ResNet-50 size: the update of a site is torchvision's
// ResNet-50 parameter set (161 tensors, 25,557,032 float32 values, 102.2 MB).
//   Codec/*     encode (copying, 256 KiB and 4 MiB chunk frames; zero-copy), decode and both
//               (Cereal header, chunk frames, SHA-256 both ways) against a naive copy baseline
//               (all tensors into one buffer and back out: two memcpy passes and the
//               allocations, no header, no hash); Sha256 alone for reference.
//   Loopback/*  one Update from a site Client to the aggregator Server over tcp://127.0.0.1,
//               end to end (encode, ZeroMQ, CURVE encryption when on, decode and hash check),
//               with and without CURVE, per chunk size, zero-copy or copying; beside them
//               pyzmq's figure for a 100 MB message (bench/transport_pyzmq.py).
// Throughput (MB_per_s) is in 10^6 bytes of tensor data per second of wall time.
//   build/bench/bench_transport
#include <benchmark/benchmark.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <random>
#include <string>

#include "protocols/codec.h"
#include "protocols/keys.h"
#include "protocols/transport.h"

namespace {

using namespace ppreid::proto;
namespace fs = std::filesystem;

void add(NamedWireTensors& out, const std::string& name, std::vector<std::int64_t> shape) {
  std::uint64_t bytes = 0;
  tensor_byte_count(shape, DType::kF32, UINT64_MAX, bytes);
  out.push_back({name, DType::kF32, std::move(shape), std::vector<std::uint8_t>(bytes)});
}

void add_bn(NamedWireTensors& out, const std::string& name, std::int64_t c) {
  add(out, name + ".weight", {c});
  add(out, name + ".bias", {c});
}

// torchvision resnet50's parameters (no running statistics), filled with random floats.
const NamedWireTensors& resnet50_update() {
  static const NamedWireTensors tensors = [] {
    NamedWireTensors t;
    add(t, "conv1.weight", {64, 3, 7, 7});
    add_bn(t, "bn1", 64);
    std::int64_t in = 64;
    const int blocks[] = {3, 4, 6, 3};
    for (int layer = 0; layer < 4; ++layer) {
      const std::int64_t planes = 64 << layer;
      for (int b = 0; b < blocks[layer]; ++b) {
        const std::string p = "layer" + std::to_string(layer + 1) + "." + std::to_string(b);
        add(t, p + ".conv1.weight", {planes, in, 1, 1});
        add_bn(t, p + ".bn1", planes);
        add(t, p + ".conv2.weight", {planes, planes, 3, 3});
        add_bn(t, p + ".bn2", planes);
        add(t, p + ".conv3.weight", {planes * 4, planes, 1, 1});
        add_bn(t, p + ".bn3", planes * 4);
        if (b == 0) {
          add(t, p + ".downsample.0.weight", {planes * 4, in, 1, 1});
          add_bn(t, p + ".downsample.1", planes * 4);
        }
        in = planes * 4;
      }
    }
    add(t, "fc.weight", {1000, 2048});
    add(t, "fc.bias", {1000});
    std::mt19937 rng(1);
    std::normal_distribution<float> normal(0.f, 0.02f);
    for (auto& w : t)
      for (std::size_t i = 0; i < w.data.size(); i += 4) {
        const float v = normal(rng);
        std::memcpy(w.data.data() + i, &v, 4);
      }
    return t;
  }();
  return tensors;
}

std::size_t payload_bytes() {
  std::size_t n = 0;
  for (const auto& t : resnet50_update()) n += t.data.size();
  return n;
}

Envelope update_envelope() {
  Envelope e;
  e.federation_id = "bench";
  e.round = 1;
  e.sender_id = "site-a";
  e.payload = Update{resnet50_update(), false, 1200, {{"loss", 1.0}}};
  return e;
}

// MB_per_s: 10^6 bytes of tensor data per second of wall time (the codec uses a second thread for
// large payloads: it hashes while the other copies).
void set_counters(benchmark::State& state) {
  state.counters["MB_per_s"] = benchmark::Counter(
      static_cast<double>(state.iterations()) * static_cast<double>(payload_bytes()) / 1e6,
      benchmark::Counter::kIsRate);
  state.counters["tensors"] = static_cast<double>(resnet50_update().size());
  state.counters["MB"] = static_cast<double>(payload_bytes()) / 1e6;
}

void BM_Codec_NaiveCopy(benchmark::State& state) {
  const NamedWireTensors& in = resnet50_update();
  for (auto _ : state) {
    std::vector<std::uint8_t> buffer(payload_bytes());
    std::size_t at = 0;
    for (const auto& t : in) {
      std::memcpy(buffer.data() + at, t.data.data(), t.data.size());
      at += t.data.size();
    }
    NamedWireTensors out(in.size());
    at = 0;
    for (std::size_t i = 0; i < in.size(); ++i) {
      out[i] = {in[i].name, in[i].dtype, in[i].shape,
                std::vector<std::uint8_t>(buffer.begin() + static_cast<std::ptrdiff_t>(at),
                                          buffer.begin() +
                                              static_cast<std::ptrdiff_t>(at + in[i].data.size()))};
      at += in[i].data.size();
    }
    benchmark::DoNotOptimize(out.data());
  }
  set_counters(state);
}

void BM_Codec_Sha256(benchmark::State& state) {
  for (auto _ : state) benchmark::DoNotOptimize(payload_sha256(resnet50_update()));
  set_counters(state);
}

void BM_Codec_Encode(benchmark::State& state) {
  const Envelope e = update_envelope();
  CodecOptions options;
  options.chunk_bytes = static_cast<std::size_t>(state.range(0)) << 10;
  for (auto _ : state) benchmark::DoNotOptimize(encode(e, options).size());
  set_counters(state);
}

// What a site does with a shared payload: hash the tensors, make frames that point into them.
void BM_Codec_EncodeZeroCopy(benchmark::State& state) {
  const Envelope e = update_envelope();
  const auto owner = std::make_shared<const Payload>(e.payload);
  const EnvelopeRef ref{e.version, e.federation_id, e.round, e.sender_id, *owner};
  CodecOptions options;
  options.chunk_bytes = static_cast<std::size_t>(state.range(0)) << 10;
  for (auto _ : state) benchmark::DoNotOptimize(encode_zero_copy(ref, owner, options).size());
  set_counters(state);
}

void BM_Codec_Decode(benchmark::State& state) {
  const auto frames = encode(update_envelope());
  const auto views = frame_views(frames);
  for (auto _ : state) benchmark::DoNotOptimize(decode(views).wire_bytes);
  state.counters["frames"] = static_cast<double>(frames.size());
  set_counters(state);
}

void BM_Codec_EncodeDecode(benchmark::State& state) {
  const Envelope e = update_envelope();
  for (auto _ : state) {
    const auto frames = encode(e);
    benchmark::DoNotOptimize(decode(frame_views(frames)).wire_bytes);
  }
  set_counters(state);
}

// Keys for the loopback runs, in a directory removed at exit.
struct BenchKeys {
  fs::path dir;
  BenchKeys() {
    dir = fs::temp_directory_path() / ("ppreid-bench-transport-" + std::to_string(::getpid()));
    fs::create_directories(dir / "allow");
    write_keypair(dir / "aggregator");
    write_keypair(dir / "site-a");
    fs::copy_file(dir / "site-a.pub", dir / "allow" / "site-a.pub");
  }
  ~BenchKeys() {
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
};

// pyzmq's figures beside the Loopback rows: the JSON of bench/transport_pyzmq.py, from the file
// PPREID_PYZMQ_JSON names, or by running the script once (about 20 s) with Debian's python3 when
// python3-zmq is installed. PPREID_PYZMQ=off skips it. Empty when there is none.
struct PyzmqFigures {
  double curve_MB_per_s = 0, plain_MB_per_s = 0;
};

const PyzmqFigures& pyzmq_figures() {
  static const PyzmqFigures figures = [] {
    PyzmqFigures out;
    const char* off = std::getenv("PPREID_PYZMQ");
    if (off && std::string(off) == "off") return out;
    std::string text;
    if (const char* file = std::getenv("PPREID_PYZMQ_JSON")) {
      std::ifstream in(file);
      text.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    } else if (fs::exists("/usr/bin/python3")) {
      const std::string command = "/usr/bin/python3 " PPREID_SOURCE_DIR
                                  "/bench/transport_pyzmq.py --runs 10 --frame-bytes 1048576";
      if (FILE* pipe = ::popen(command.c_str(), "r")) {
        char buffer[4096];
        for (std::size_t n; (n = std::fread(buffer, 1, sizeof buffer, pipe)) > 0;)
          text.append(buffer, n);
        if (::pclose(pipe) != 0) text.clear();
      }
    }
    const auto json = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (!json.is_object() || !json.contains("curve") || !json.contains("plain")) {
      std::fprintf(stderr, "pyzmq: no figures (install python3-zmq, or set PPREID_PYZMQ_JSON)\n");
      return out;
    }
    out.curve_MB_per_s = json["curve"][0].value("MB_per_s", 0.0);
    out.plain_MB_per_s = json["plain"][0].value("MB_per_s", 0.0);
    std::fprintf(stderr,
                 "pyzmq %s (libzmq %s), %.0f MB in %d-byte frames DEALER -> ROUTER over "
                 "loopback, median of %d: CURVE %.0f MB/s, plain %.0f MB/s "
                 "(bench/transport_pyzmq.py; the Loopback rows show them as pyzmq_MB_per_s)\n",
                 json.value("pyzmq", "?").c_str(), json.value("libzmq", "?").c_str(),
                 json.value("message_bytes", 0.0) / 1e6, json["curve"][0].value("frame_bytes", 0),
                 json.value("runs", 0), out.curve_MB_per_s, out.plain_MB_per_s);
    return out;
  }();
  return figures;
}

// Args: curve (0/1), chunk_KiB, zero_copy (1: the site sends a shared_ptr<const Payload> and the
// frames point into its tensors; 0: Client::send(const Payload&) copies them into the frames).
void BM_Loopback(benchmark::State& state) {
  static BenchKeys keys;
  const PyzmqFigures& pyzmq = pyzmq_figures();  // before the sockets exist: nothing else runs
  // The insecure run's warning banner and the connection logs would interleave with the table.
  spdlog::set_level(spdlog::level::err);
  const bool curve = state.range(0) != 0;
  const bool zero_copy = state.range(2) != 0;
  ServerOptions so;
  so.federation_id = "bench";
  so.security = curve ? Security::kCurve : Security::kInsecure;
  so.secret_key_file = keys.dir / "aggregator.key";
  so.allow_list_dir = keys.dir / "allow";
  so.socket.linger = std::chrono::milliseconds(0);
  so.socket.codec.chunk_bytes = static_cast<std::size_t>(state.range(1)) << 10;
  Server server(so);
  ClientOptions co;
  co.endpoint = server.endpoint();
  co.site_id = "site-a";
  co.federation_id = "bench";
  co.security = so.security;
  co.secret_key_file = keys.dir / "site-a.key";
  co.server_public_key_file = keys.dir / "aggregator.pub";
  co.socket = so.socket;
  Client client(co);
  const auto update =
      std::make_shared<const Payload>(Update{resnet50_update(), false, 1200, {{"loss", 1.0}}});
  for (auto _ : state) {
    if (zero_copy)
      client.send(1, update);
    else
      client.send(1, *update);
    auto got = server.receive(std::chrono::seconds(120));
    if (!got) {
      state.SkipWithError("no update arrived within 120 s");
      break;
    }
    benchmark::DoNotOptimize(got->wire_bytes);
  }
  set_counters(state);
  const double reference = curve ? pyzmq.curve_MB_per_s : pyzmq.plain_MB_per_s;
  if (reference > 0) state.counters["pyzmq_MB_per_s"] = reference;
}

}  // namespace

BENCHMARK(BM_Codec_NaiveCopy)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(2);
BENCHMARK(BM_Codec_Sha256)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(2);
BENCHMARK(BM_Codec_Encode)->ArgName("chunk_KiB")->Arg(256)->Arg(4096)->Unit(benchmark::kMillisecond)
    ->UseRealTime()->MinTime(2);
BENCHMARK(BM_Codec_EncodeZeroCopy)->ArgName("chunk_KiB")->Arg(1024)->Unit(benchmark::kMillisecond)
    ->UseRealTime()->MinTime(2);
BENCHMARK(BM_Codec_Decode)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(2);
BENCHMARK(BM_Codec_EncodeDecode)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(2);
// The chunk sizes with zero-copy frames, then the copying path at the default chunk size.
BENCHMARK(BM_Loopback)
    ->ArgNames({"curve", "chunk_KiB", "zero_copy"})
    ->ArgsProduct({{0, 1}, {256, 512, 1024, 4096}, {1}})
    ->Args({0, 1024, 0})
    ->Args({1, 1024, 0})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->MinTime(5);

BENCHMARK_MAIN();
