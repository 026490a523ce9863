// Hops: a client request forwarded to its bucket's leader over the peer
// link, and the answer coming back the same way (DESIGN §3 "a client may
// send anything to any participant", §4 the hop rule). This file is the
// codec of the payload of a `hop` frame (peer_frame.h type 4); the routing
// lives in router.h.
//
// Pure code, any core. Format, version 2, over consensus/codec.h (every
// integer a minimal varint; version 2: bucket entries carry their
// connection's wrap, consensus/phaser_codec.h format 3):
//
//   hop     = version(0x02) kind call fields
//   kind 1  append request  slot hops deadline_ms bucket n bucket_entry*n
//   kind 2  read request    slot hops deadline_ms bucket from limit wait_ms
//                           has_identifier(0/1) [len identifier]
//   kind 3  append answer   n (outcome(u8) position)*n   (outcome: consensus::Outcome's
//                           value: 0 appended .. 4 overloaded, 5 expired)
//   kind 4  read answer     status(u16 as varint) len body
//
// `call` is the sender's id for the request; the answer echoes it. `slot` is
// the sender's applied membership slot: a receiver behind it catches up
// before it decides where the request goes. `hops` counts the hops taken,
// this one included (the receiver refuses to forward past hops_max);
// `deadline_ms` is what is left of the request's deadline when sent (a
// relative time: the two clocks never meet). A read answer carries the
// HTTP status and JSON body the leader made, so a hopped read answers
// exactly what the leader would have.
//
// Decoding fails closed with codec.h's reasons plus "unknown kind",
// "bad outcome", "bad status", "empty append" and "bad hops"; an append's
// entries fail "bad value" when a series is not below its wrap, or when
// the entries with a connection do not share one and follow a window's
// order (consensus::WindowOrder): what the sender's HTTP layer checked.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "consensus/codec.h"
#include "consensus/ids.h"
#include "consensus/phaser_messages.h"

namespace coworker::server {

inline constexpr uint8_t hop_format_version = 2;
// DESIGN §3: hops per request / hop deadline.
inline constexpr uint32_t hops_max = 3;
inline constexpr uint32_t hop_deadline_ms = 2000;
// A window holds at most 1000 messages (DESIGN §3), so a part does too.
inline constexpr size_t hop_messages_max = 1000;

// What every request carries besides its content.
struct HopRoute {
  uint64_t slot = 0;
  uint32_t hops = 0;
  uint32_t deadline_ms = 0;
  friend bool operator==(const HopRoute&, const HopRoute&) = default;
};

struct AppendHop {
  HopRoute route;
  uint32_t bucket = 0;
  std::vector<consensus::BucketEntry> messages;  // one bucket's part of a window, in order
  friend bool operator==(const AppendHop&, const AppendHop&) = default;
};

struct ReadHop {
  HopRoute route;
  uint32_t bucket = 0;
  uint64_t from = 0;
  uint32_t limit = 0;
  uint32_t wait_ms = 0;
  std::optional<std::string> identifier;  // GET /v1/log/{identifier}
  friend bool operator==(const ReadHop&, const ReadHop&) = default;
};

struct AppendAnswer {
  std::vector<consensus::MessageResult> results;
  friend bool operator==(const AppendAnswer&, const AppendAnswer&) = default;
};

struct ReadAnswer {
  uint16_t status = 0;
  std::string body;
  friend bool operator==(const ReadAnswer&, const ReadAnswer&) = default;
};

struct Hop {
  uint64_t call = 0;
  std::variant<AppendHop, ReadHop, AppendAnswer, ReadAnswer> content;
  friend bool operator==(const Hop&, const Hop&) = default;
};

std::string encode_hop(const Hop& hop);
consensus::Decoded<Hop> decode_hop(std::string_view bytes);

}  // namespace coworker::server
