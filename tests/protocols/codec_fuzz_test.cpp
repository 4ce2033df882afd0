// Random mutations of valid messages: every one must either decode or throw DecodeError. Anything
// else (another exception, bad_alloc from a length the frame does not hold, a crash, a hang)
// fails. Deterministic (fixed seed), and well under two seconds in a Release build.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <map>
#include <random>

#include "protocols/codec.h"
#include "tests/protocols/protocol_test_util.h"

namespace ppreid::proto {
namespace {

using testing::one_of_each_type;
using testing::to_strings;

std::vector<std::string> mutate(std::vector<std::string> frames, std::mt19937_64& rng) {
  auto pick = [&](std::size_t n) { return std::uniform_int_distribution<std::size_t>(0, n - 1)(rng); };
  const int kinds = 9;
  const int rounds = 1 + static_cast<int>(pick(3));
  for (int r = 0; r < rounds && !frames.empty(); ++r) {
    std::string& f = frames[pick(frames.size())];
    switch (pick(kinds)) {
      case 0:  // flip one bit
        if (!f.empty()) f[pick(f.size())] ^= static_cast<char>(1 << pick(8));
        break;
      case 1:  // random byte
        if (!f.empty()) f[pick(f.size())] = static_cast<char>(pick(256));
        break;
      case 2:  // truncate
        f.resize(f.empty() ? 0 : pick(f.size()));
        break;
      case 3:  // append junk
        for (std::size_t i = 1 + pick(9); i > 0; --i) f += static_cast<char>(pick(256));
        break;
      case 4: {  // a huge little-endian length or count somewhere
        if (f.size() < 8) break;
        const std::size_t at = pick(f.size() - 7);
        const std::uint64_t values[] = {~0ull, 1ull << 62, 1ull << 40, 0x7fffffffull, 0};
        const std::uint64_t v = values[pick(5)];
        std::memcpy(f.data() + at, &v, 8);
        break;
      }
      case 5:  // drop a frame
        frames.erase(frames.begin() + static_cast<std::ptrdiff_t>(pick(frames.size())));
        break;
      case 6:  // duplicate a frame
        frames.push_back(frames[pick(frames.size())]);
        break;
      case 7:  // swap two frames
        std::swap(frames[pick(frames.size())], frames[pick(frames.size())]);
        break;
      case 8:  // delete a byte range inside the header
        if (frames[0].size() > 8) {
          const std::size_t at = 6 + pick(frames[0].size() - 6);
          frames[0].erase(at, 1 + pick(8));
        }
        break;
    }
  }
  return frames;
}

TEST(CodecFuzzTest, RandomMutationsDecodeOrThrowDecodeError) {
  CodecOptions options;
  options.chunk_bytes = 100;  // several chunk frames per model message
  options.max_message_bytes = 1 << 20;
  options.max_header_bytes = 64 << 10;
  std::vector<std::vector<std::string>> seeds;
  for (const Envelope& e : one_of_each_type()) seeds.push_back(to_strings(encode(e, options)));

  std::mt19937_64 rng(20240611);
  const int kMutations = 30000;
  int decoded = 0, rejected = 0;
  std::map<DecodeFailure, int> by_failure;
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < kMutations; ++i) {
    const auto frames = mutate(seeds[static_cast<std::size_t>(i) % seeds.size()], rng);
    try {
      testing::decode_strings(frames, options);
      ++decoded;
    } catch (const DecodeError& e) {
      ++rejected;
      ++by_failure[e.failure()];
    } catch (const std::exception& e) {
      FAIL() << "mutation " << i << " threw something else than DecodeError: " << e.what();
    }
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_EQ(decoded + rejected, kMutations);
  EXPECT_GT(rejected, kMutations / 2);  // the mutations do hit
  for (const auto& [failure, n] : by_failure)
    std::printf("  %-20s %d\n", to_string(failure), n);
  std::printf("  decoded %d, rejected %d, in %.2f s\n", decoded, rejected, seconds);
  EXPECT_LT(seconds, 2.0);
}

}  // namespace
}  // namespace ppreid::proto
