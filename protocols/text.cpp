#include "protocols/text.h"

namespace ppreid::proto {
namespace {

bool printable(char c) { return c >= 0x20 && c <= 0x7e; }

}  // namespace

bool is_valid_id(std::string_view id) {
  if (id.empty() || id.size() > kMaxIdBytes) return false;
  for (char c : id) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

bool is_printable_text(std::string_view text, std::size_t max_bytes) {
  if (text.size() > max_bytes) return false;
  for (char c : text)
    if (!printable(c)) return false;
  return true;
}

std::string printable_for_log(std::string_view text, std::size_t max_bytes) {
  std::string out(text.substr(0, max_bytes));
  for (char& c : out)
    if (!printable(c)) c = '?';
  if (text.size() > max_bytes) out += "...";
  return out;
}

}  // namespace ppreid::proto
