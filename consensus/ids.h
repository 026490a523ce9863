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

// Series of a connection compare by serial-number arithmetic within its
// wrap (DESIGN §3 `series_wrap`, chosen at connect in [2^32, 2^53]).
constexpr uint64_t series_wrap_min = uint64_t{1} << 32;
constexpr uint64_t series_wrap_default = uint64_t{1} << 53;

// A client session id: the issuing participant, its counter, and the
// series wrap the client asked for at connect. (issuer, counter) is unique
// in the cluster forever (counter blocks are persisted before use); the
// issuer gives each counter one wrap, and the id carries it to every bucket
// (entries hold it, so every replica's dedup table folds it from the log).
// All three fields are the id: the same counter under another wrap (a
// forged id) is another connection, never a mix of two wraps.
struct ConnectionId {
  ParticipantId issuer = no_participant;
  uint64_t counter = 0;
  uint64_t wrap = series_wrap_default;
  friend auto operator<=>(const ConnectionId&, const ConnectionId&) = default;
  bool valid() const { return issuer != no_participant; }
  // For logs and checkers; the client's text form adds a check of the
  // cluster (tools/coworker/connection_text.h).
  std::string to_string() const {
    std::string text = std::to_string(issuer) + "-" + std::to_string(counter);
    if (wrap != series_wrap_default) text += "-" + std::to_string(wrap);
    return text;
  }
};

}  // namespace coworker::consensus
