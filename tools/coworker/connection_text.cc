#include "tools/coworker/connection_text.h"

#include <array>
#include <charconv>

#include <fmt/format.h>

#include "consensus/crc32c.h"

namespace coworker::server {

using consensus::ConnectionId;

namespace {

uint32_t check_of(const ConnectionId& id, uint64_t cluster) {
  uint32_t crc = consensus::crc32c_u64(0, cluster);
  crc = consensus::crc32c_u64(crc, id.issuer);
  crc = consensus::crc32c_u64(crc, id.counter);
  return consensus::crc32c_u64(crc, id.wrap);
}

// A decimal without sign or leading zeros that fits a u64.
bool parse_decimal(std::string_view text, uint64_t* out) {
  if (text.empty() || (text.size() > 1 && text[0] == '0')) return false;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), *out);
  return error == std::errc() && end == text.data() + text.size();
}

bool parse_check(std::string_view text, uint32_t* out) {
  if (text.size() != 8) return false;
  for (char c : text) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), *out, 16);
  return error == std::errc() && end == text.data() + text.size();
}

}  // namespace

std::string connection_text(const ConnectionId& id, uint64_t cluster) {
  if (id.wrap == consensus::series_wrap_default) {
    return fmt::format("{}-{}-{:08x}", id.issuer, id.counter, check_of(id, cluster));
  }
  return fmt::format("{}-{}-{}-{:08x}", id.issuer, id.counter, id.wrap, check_of(id, cluster));
}

Result<ConnectionId, ConnectionRefusal> parse_connection(std::string_view text, uint64_t cluster) {
  std::array<std::string_view, 5> parts;
  size_t n = 0;
  for (size_t start = 0; n < parts.size();) {
    const size_t dash = text.find('-', start);
    parts[n++] = text.substr(start, dash == std::string_view::npos ? dash : dash - start);
    if (dash == std::string_view::npos) break;
    start = dash + 1;
    if (n == parts.size()) return ConnectionRefusal::malformed;  // a fifth dash
  }
  if (n != 3 && n != 4) return ConnectionRefusal::malformed;
  ConnectionId id;
  uint32_t check = 0;
  if (!parse_decimal(parts[0], &id.issuer) || !parse_decimal(parts[1], &id.counter) ||
      !parse_check(parts[n - 1], &check) || !id.valid()) {
    return ConnectionRefusal::malformed;
  }
  if (n == 4) {
    // The default wrap is written without: one text per id.
    if (!parse_decimal(parts[2], &id.wrap) || id.wrap < consensus::series_wrap_min ||
        id.wrap >= consensus::series_wrap_default) {
      return ConnectionRefusal::malformed;
    }
  }
  // The entry codec doubles the counter (consensus/phaser_codec.h).
  if (id.counter >= (uint64_t{1} << 63)) return ConnectionRefusal::malformed;
  if (check != check_of(id, cluster)) return ConnectionRefusal::unknown;
  return id;
}

}  // namespace coworker::server
