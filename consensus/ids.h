// Identifiers shared by the consensus state machines.
//
// Pure value types: no I/O, no clock. Text forms follow DESIGN §3.
#pragma once

#include <compare>
#include <cstdint>
#include <string>

namespace coworker::consensus {

// A participant's arrival id: the membership slot that decided its arrival.
using ParticipantId = uint64_t;
constexpr ParticipantId no_participant = 0;

// Position of an entry in its bucket's log; contiguous from 0.
using Position = uint64_t;

// A leadership promise: the membership slot that granted the leadership and a
// per-participant counter bumped (durably) at every leadership start.
// Compared lexicographically; written "57.2". The one Promise of the code
// base: the log store's record header carries it too (32-bit counter field,
// bucket/record.h), so the counter is 32 bits here — four billion leadership
// starts per arrival id; the host asserts it never wraps.
struct Promise {
  uint64_t slot = 0;
  uint32_t counter = 0;
  friend auto operator<=>(const Promise&, const Promise&) = default;
  std::string to_string() const { return std::to_string(slot) + "." + std::to_string(counter); }
};

// A client session id: the issuing participant and its counter. Unique in
// the cluster forever (counter blocks are persisted before use).
struct ConnectionId {
  ParticipantId issuer = no_participant;
  uint64_t counter = 0;
  friend auto operator<=>(const ConnectionId&, const ConnectionId&) = default;
  bool valid() const { return issuer != no_participant; }
  std::string to_string() const { return std::to_string(issuer) + "-" + std::to_string(counter); }
};

}  // namespace coworker::consensus
