#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace ppreid::proto {

// Federation, site and aggregator ids: 1..kMaxIdBytes of [A-Za-z0-9._-]. They appear in logs and
// file names (a site id is the stem of its .pub file), so nothing else is allowed.
inline constexpr std::size_t kMaxIdBytes = 128;
bool is_valid_id(std::string_view id);

// Free text that comes off the wire (error messages, statuses, method names, metric keys, tensor
// names) must be printable ASCII of bounded length, so that it cannot forge log lines.
inline constexpr std::size_t kMaxTextBytes = 4096;
bool is_printable_text(std::string_view text, std::size_t max_bytes = kMaxTextBytes);

// For logs: `text` with anything not printable replaced by '?', cut at `max_bytes`.
std::string printable_for_log(std::string_view text, std::size_t max_bytes = 256);

}  // namespace ppreid::proto
