// The client's text form of a connection id (DESIGN §3 "connection": a JSON
// string, and the Coworker-Connection header):
//
//   <issuer>-<counter>-<check>            series_wrap 2^53 (the default)
//   <issuer>-<counter>-<wrap>-<check>     any other series_wrap
//
// issuer, counter and wrap in decimal (no sign, no leading zeros), check as
// 8 lowercase hex digits: CRC32C over the cluster id, issuer, counter and
// wrap, each a little-endian u64. The wrap travels in the id, so every
// bucket compares the connection's series within it (consensus/ids.h).
//
// The check tells an id of this cluster from one another cluster issued —
// a client that kept its id while its cluster was rebuilt from empty data
// dirs, whose counters start again and would alias other clients' — and
// from a mistyped one: both are `409 unknown_connection`, never logged. It
// is not an authentication (the cluster id is public in /v1/cluster): a
// client that forges an id only hurts its own exactly-once.
//
// Pure functions, any core; fuzzed with the peer frames (peer_frame_fuzz).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "consensus/ids.h"
#include "reactor/result.h"

namespace coworker::server {

std::string connection_text(const consensus::ConnectionId& id, uint64_t cluster);

enum class ConnectionRefusal {
  malformed,  // 400 bad_header: not the form above, or a wrap outside [2^32, 2^53]
  unknown,    // 409 unknown_connection: the check is not this cluster's
};
Result<consensus::ConnectionId, ConnectionRefusal> parse_connection(std::string_view text,
                                                                    uint64_t cluster);

}  // namespace coworker::server
