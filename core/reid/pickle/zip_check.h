#pragma once

// Zip directory check. PyTorchStreamReader (miniz) allocates a record's declared uncompressed
// size before inflating it; miniz already ties a stored record's size to the file size, but a
// crafted deflated record could claim gigabytes. torch.save never compresses, so the check
// below costs nothing on real files and bounds every later allocation by the file size.
//
// Torch-free: no LibTorch header may reach this file.

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace ppreid::reid::pickle {

// The little-endian unsigned integer of `bytes` bytes at `p` (zip fields, pickle operands).
inline uint64_t le(const unsigned char* p, int bytes) {
  uint64_t v = 0;
  for (int i = bytes - 1; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

struct ZipSummary {
  uint64_t uncompressed_bytes = 0;  // sum over all records: the data the archive can yield
};

class ZipScanner {
 public:
  ZipScanner(const std::filesystem::path& file, std::string where, uint64_t file_size);

  ZipSummary scan();

 private:
  // A zip64 extra field lists the 64-bit sizes in this order, each only when its 32-bit
  // field is saturated.
  void zip64_sizes(const unsigned char* extra, uint64_t extra_len, uint64_t& uncompressed,
                   uint64_t& compressed);

  std::vector<unsigned char> read(uint64_t offset, uint64_t n);

  [[noreturn]] void corrupt(const std::string& what);

  std::ifstream in_;
  std::string where_;
  uint64_t file_size_;
};

}  // namespace ppreid::reid::pickle
