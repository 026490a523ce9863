// DedupTable: a bucket's exactly-once memory, per connection (DESIGN §3).
//
// Owned by one Phaser. On every replica it is a pure function of the
// committed log (so a new leader rebuilds it from what it holds); the leader
// additionally tracks what is accepted but not yet committed.
//
// Per connection it keeps:
//   highest accepted   committed, in the write in flight, or queued
//   highest committed
//   last window        the window id (first series of the client's window) of
//                      the newest committed window, with the position of each
//                      of its series in this bucket
// and the rule for an arriving message with series s is (pending is kept by
// the Phaser, which checks it first):
//   s in the last committed window      → duplicate, with its position
//   s not after the highest accepted    → superseded
//   otherwise                           → new
// Series compare by serial-number arithmetic within the connection's wrap.
#pragma once

#include <cstdint>
#include <unordered_map>
#include <optional>
#include <utility>
#include <vector>

#include "consensus/codec.h"
#include "consensus/ids.h"
#include "consensus/phaser_messages.h"

namespace coworker::consensus {

constexpr uint64_t series_wrap_default = uint64_t{1} << 53;

// True when `a` comes after `b` in serial-number arithmetic modulo `wrap`:
// the distance from b forward to a is in [1, wrap/2).
inline bool series_after(uint64_t a, uint64_t b, uint64_t wrap) {
  const uint64_t distance = (a + wrap - b) % wrap;
  return distance != 0 && distance < wrap / 2;
}

class DedupTable {
 public:
  enum class Verdict { fresh, duplicate, superseded };

  struct Decision {
    Verdict verdict = Verdict::fresh;
    Position position = 0;  // for duplicate
  };

  // What the rule says for (connection, series), pending aside.
  Decision decide(const ConnectionId& connection, uint64_t series) const;

  // The leader accepted s as new (queued or re-proposed).
  void accept(const ConnectionId& connection, uint64_t series);
  // An entry became committed at `position` (every replica, in log order).
  void commit(const BucketEntry& entry, Position position);
  // Leadership lost or restarted: forget what was accepted but not committed
  // (a connection with nothing committed is forgotten: the rule answers
  // `fresh` for it either way).
  void forget_accepted();

  // The committed state, for a bucket checkpoint (phaser_codec.h): per
  // connection, in id order, its wrap, highest committed series and last
  // window. Only a table with nothing accepted beyond what is committed (an
  // image's: Phaser::image) is encoded; decoding checks form, ids valid and
  // sorted, and windows in increasing series.
  //   table      = n connection*n
  //   connection = issuer counter wrap highest_committed last_window
  //                m (series position)*m
  void encode(Writer& out) const;
  static DedupTable decode(Reader& in);
  // Same committed and accepted state (tests, the simulator's checks).
  friend bool operator==(const DedupTable& a, const DedupTable& b);

  size_t connections() const { return _connections.size(); }
  // The bytes the table holds, counted from what it holds: each map node
  // (key, value, its link, cached hash and bucket slot) and each connection's
  // window positions. For monitoring; O(connections).
  size_t memory_bytes() const {
    // A hash node: the next link and the cached hash; plus a bucket slot.
    constexpr size_t node_overhead = 3 * sizeof(void*);
    size_t bytes = 0;
    for (const auto& [id, connection] : _connections) {
      bytes += sizeof(id) + sizeof(connection) + node_overhead +
               connection.last_window_positions.capacity() *
                   sizeof(connection.last_window_positions[0]);
    }
    return bytes;
  }

 private:
  struct Connection {
    uint64_t wrap = series_wrap_default;
    std::optional<uint64_t> highest_accepted;
    std::optional<uint64_t> highest_committed;
    uint64_t last_window = 0;
    std::vector<std::pair<uint64_t, Position>> last_window_positions;  // log order
    friend bool operator==(const Connection&, const Connection&) = default;
  };

  struct Hash {
    size_t operator()(const ConnectionId& id) const {
      // Counters are dense per issuer: mix both halves (splitmix64's finaliser).
      uint64_t x = id.counter * 0x9e3779b97f4a7c15ull ^ id.issuer;
      x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
      x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
      return static_cast<size_t>(x ^ (x >> 31));
    }
  };
  // Hashed: every lookup is one probe, where a tree walked ~log2(n) nodes
  // (7% of a participant's CPU at 64 clients). Nothing depends on the
  // iteration order (forget_accepted, memory_bytes), so runs stay
  // deterministic.
  std::unordered_map<ConnectionId, Connection, Hash> _connections;
};

}  // namespace coworker::consensus
