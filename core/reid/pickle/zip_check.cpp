#include "core/reid/pickle/zip_check.h"

#include <algorithm>
#include <utility>

#include "core/util/error.h"

namespace ppreid::reid::pickle {
namespace {

constexpr uint32_t kEocdSignature = 0x06054b50;
constexpr uint32_t kZip64LocatorSignature = 0x07064b50;
constexpr uint32_t kZip64EocdSignature = 0x06064b50;
constexpr uint32_t kCentralSignature = 0x02014b50;
constexpr uint64_t kDeflateMaxRatio = 1032;  // deflate cannot expand data by more than this

}  // namespace

ZipScanner::ZipScanner(const std::filesystem::path& file, std::string where, uint64_t file_size)
    : in_(file, std::ios::binary), where_(std::move(where)), file_size_(file_size) {
  if (!in_) throw Error(where_ + ": cannot open the file for reading; check its permissions");
}

ZipSummary ZipScanner::scan() {
  // The end-of-central-directory record sits in the last 22 + 65535 (comment) bytes.
  const uint64_t tail_size = std::min<uint64_t>(file_size_, 22 + 65535);
  std::vector<unsigned char> tail = read(file_size_ - tail_size, tail_size);
  int64_t eocd = -1;
  for (int64_t i = static_cast<int64_t>(tail_size) - 22; i >= 0; --i) {
    if (le(&tail[i], 4) == kEocdSignature) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0) corrupt("it has no zip end-of-central-directory record");
  const unsigned char* e = &tail[eocd];
  uint64_t entries = le(e + 10, 2);
  uint64_t dir_size = le(e + 12, 4);
  uint64_t dir_offset = le(e + 16, 4);
  if (entries == 0xFFFF || dir_size == 0xFFFFFFFF || dir_offset == 0xFFFFFFFF) {
    const uint64_t eocd_pos = file_size_ - tail_size + eocd;
    if (eocd_pos < 20) corrupt("its zip64 locator is missing");
    std::vector<unsigned char> loc = read(eocd_pos - 20, 20);
    if (le(loc.data(), 4) != kZip64LocatorSignature) corrupt("its zip64 locator is missing");
    std::vector<unsigned char> z = read(le(loc.data() + 8, 8), 56);
    if (le(z.data(), 4) != kZip64EocdSignature) corrupt("its zip64 directory record is bad");
    entries = le(z.data() + 32, 8);
    dir_size = le(z.data() + 40, 8);
    dir_offset = le(z.data() + 48, 8);
  }
  if (dir_offset > file_size_ || dir_size > file_size_ - dir_offset)
    corrupt("its zip central directory lies outside the file");
  if (entries > dir_size / 46) corrupt("its zip central directory is too short");
  std::vector<unsigned char> dir = read(dir_offset, dir_size);
  ZipSummary summary;
  uint64_t pos = 0;
  for (uint64_t n = 0; n < entries; ++n) {
    if (dir_size - pos < 46 || le(&dir[pos], 4) != kCentralSignature)
      corrupt("its zip central directory is damaged");
    const unsigned char* h = &dir[pos];
    const uint64_t method = le(h + 10, 2);
    uint64_t compressed = le(h + 20, 4);
    uint64_t uncompressed = le(h + 24, 4);
    const uint64_t name_len = le(h + 28, 2);
    const uint64_t extra_len = le(h + 30, 2);
    const uint64_t comment_len = le(h + 32, 2);
    if (dir_size - pos - 46 < name_len + extra_len + comment_len)
      corrupt("its zip central directory is damaged");
    if (compressed == 0xFFFFFFFF || uncompressed == 0xFFFFFFFF)
      zip64_sizes(h + 46 + name_len, extra_len, uncompressed, compressed);
    const std::string name(reinterpret_cast<const char*>(h + 46), name_len);
    if (compressed > file_size_) corrupt("zip record '" + name + "' is larger than the file");
    if (method == 0 && uncompressed != compressed)
      corrupt("zip record '" + name + "' has inconsistent sizes");
    if (method == 8 && uncompressed / kDeflateMaxRatio > compressed)
      corrupt("zip record '" + name + "' claims an impossible compression ratio");
    if (method != 0 && method != 8)
      throw Error(where_ + ": zip record '" + name + "' uses compression method " +
                  std::to_string(method) +
                  ", which PyTorch never writes; re-save the file "
                  "with torch.save(obj, path)");
    summary.uncompressed_bytes += uncompressed;
    pos += 46 + name_len + extra_len + comment_len;
  }
  return summary;
}

void ZipScanner::zip64_sizes(const unsigned char* extra, uint64_t extra_len,
                             uint64_t& uncompressed, uint64_t& compressed) {
  uint64_t at = 0;
  while (extra_len - at >= 4) {
    const uint64_t id = le(extra + at, 2);
    const uint64_t len = le(extra + at + 2, 2);
    if (extra_len - at - 4 < len) break;
    if (id == 0x0001) {
      uint64_t field = at + 4;
      const uint64_t end = field + len;
      if (uncompressed == 0xFFFFFFFF && end - field >= 8) {
        uncompressed = le(extra + field, 8);
        field += 8;
      }
      if (compressed == 0xFFFFFFFF && end - field >= 8) compressed = le(extra + field, 8);
      return;
    }
    at += 4 + len;
  }
  corrupt("a zip64 record has no 64-bit sizes");
}

std::vector<unsigned char> ZipScanner::read(uint64_t offset, uint64_t n) {
  if (offset > file_size_ || n > file_size_ - offset)
    corrupt("a zip structure points past the end of the file");
  std::vector<unsigned char> buf(n);
  in_.seekg(static_cast<std::streamoff>(offset));
  in_.read(reinterpret_cast<char*>(buf.data()), static_cast<std::streamsize>(n));
  if (!in_) corrupt("reading it failed");
  return buf;
}

void ZipScanner::corrupt(const std::string& what) {
  throw Error(where_ + " is not a readable torch.save zip archive: " + what +
              "; the file is truncated or corrupted: download or save it again");
}

}  // namespace ppreid::reid::pickle
