#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

namespace ppreid::util {

// Uniform random 32-bit words for privacy noise. Two kinds: the OS-seeded CSPRNG (the default:
// nothing about the noise is predictable) and a keyed deterministic generator for experiments
// that must be repeatable. Neither is thread-safe; make one per thread or per image.
class RandomSource {
 public:
  virtual ~RandomSource() = default;
  virtual void fill(std::uint32_t* out, std::size_t n) = 0;
  virtual bool deterministic() const = 0;

  std::uint32_t next_u32();
  // Uniform in (0, 1]: never 0, so log() of it is finite.
  double uniform_open0();

 private:
  std::vector<std::uint32_t> buffer_;
  std::size_t pos_ = 0;
};

// OpenSSL's private DRBG (RAND_priv_bytes), seeded by the operating system.
class CsprngSource final : public RandomSource {
 public:
  void fill(std::uint32_t* out, std::size_t n) override;
  bool deterministic() const override { return false; }
};

// AES-256 in counter mode keyed by SHA-256 of (seed, stream): a deterministic DRBG. Different
// streams are independent, so image i of a dataset always gets the same noise for a seed no matter
// which thread handles it.
class DrbgSource final : public RandomSource {
 public:
  DrbgSource(std::uint64_t seed, std::uint64_t stream);
  ~DrbgSource() override;
  DrbgSource(const DrbgSource&) = delete;
  DrbgSource& operator=(const DrbgSource&) = delete;
  void fill(std::uint32_t* out, std::size_t n) override;
  bool deterministic() const override { return true; }

 private:
  struct Cipher;
  std::unique_ptr<Cipher> cipher_;
};

// The CSPRNG unless a seed is given.
std::unique_ptr<RandomSource> make_random_source(std::optional<std::uint64_t> seed,
                                                 std::uint64_t stream);

}  // namespace ppreid::util
