// DedupTable: a bucket's exactly-once memory, per connection (DESIGN §3).
//
// Owned by one Phaser. On every replica it is a pure function of the
// committed log (so a new leader rebuilds it from what it holds); the leader
// additionally tracks what is accepted but not yet committed.
//
// Per connection it keeps (a tracked connection has at least one committed
// message in this bucket):
//   last seen          the time of the newest committed write holding one of
//                      its messages (leader-stamped: Write::time)
//   last window        the window id (first series of the client's window) of
//                      the newest committed window, with the position of each
//                      of its series in this bucket; its last series is the
//                      connection's highest committed
// per issuer a watermark (every connection of that issuer whose counter is
// below it and that is not tracked has expired here), the newest committed
// write's time, and, on the leader, the highest series accepted beyond the
// committed one (queued or in flight).
//
// The rule for an arriving message with series s (pending is kept by the
// Phaser, which checks it first):
//   s in the last committed window                → duplicate, with its position
//   s not after the highest committed             → superseded (expired when
//                                                   the counter is below the
//                                                   watermark: see below)
//   untracked, counter below watermark, s not
//     after a series still accepted               → expired (409, not logged)
//   s not after the highest accepted              → superseded
//   otherwise                                     → new
// (An untracked connection expired here may have committed s before its
// state went, so a series at or below one still accepted is expired, not
// superseded: the client connects again rather than taking it for a
// straggler of an abandoned window. So is a tracked one below the
// watermark: it may have expired and come back with a series accepted
// before, its earlier window lost. A straggler of a low-counter connection
// that never expired is answered expired too: 409 and not logged either way.)
// Series compare by serial-number arithmetic within the connection's wrap
// (ConnectionId::wrap: a connection is its issuer, counter and wrap).
//
// Expiry (DESIGN §3), identical on every replica: a committed write carries
// its leader's time and `expire_before` (both never lower than the write
// before's); once its entries are committed, every
// connection last seen before expire_before is dropped and its issuer's
// watermark raised above its counter. Never by count, never by a local
// clock. Why a retry never becomes a duplicate: a message logged here was
// committed under a tracked connection; while tracked, the rule answers
// duplicate or superseded; once dropped, the watermark is above its counter
// and the rule answers expired. A connection expired here while one of its
// messages is still accepted (queued behind the expiring write) keeps its
// accepted series, so that message and later ones stay new: each is after
// everything the connection ever committed here.
//
// Memory (issue 13 point 4): 48 bytes of node per tracked connection, in one
// vector, an open-addressed index of 4-byte slots at most 3/4 full, and a
// list in last-seen order threaded through the nodes (expiry pops its head:
// O(1) per expired connection). Only a connection whose last window here
// holds more than one series, or did not start here, keeps an Extra beside
// its node (the window id and its earlier series). Copies are plain copies
// (the indices stay valid).
#pragma once

#include <cstdint>
#include <optional>
#include <unordered_map>
#include <utility>
#include <vector>

#include "consensus/codec.h"
#include "consensus/ids.h"
#include "consensus/phaser_messages.h"

namespace coworker::consensus {

// True when `a` comes after `b` in serial-number arithmetic modulo `wrap`:
// the distance from b forward to a is in [1, wrap/2).
inline bool series_after(uint64_t a, uint64_t b, uint64_t wrap) {
  const uint64_t distance = (a + wrap - b) % wrap;
  return distance != 0 && distance < wrap / 2;
}

// The order of a window's series (DESIGN §3: they strictly increase within
// a window): each series' offset from the window's first, modulo the wrap,
// is above the one before and below wrap/2. Then every pair of the window —
// and of any part of it: a bucket's share, what a hand-back returns —
// compares in order by series_after (Phaser::on_append asserts it for
// neighbours), and no series repeats. Checking only neighbours would let
// [0, 2^31−1, 2^32−2] (wrap 2^32) through, whose first and last are out of
// order, or [0, w/3, 2w/3, 0], which repeats its first.
class WindowOrder {
 public:
  explicit WindowOrder(uint64_t wrap) : _wrap(wrap) {}
  // Takes the window's next series; false when it breaks the order.
  bool next(uint64_t series) {
    if (series >= _wrap) return false;
    if (!_started) {
      _started = true;
      _first = series;
      return true;
    }
    const uint64_t offset = (series + _wrap - _first) % _wrap;
    if (offset <= _last || offset >= _wrap / 2) return false;
    _last = offset;
    return true;
  }

 private:
  uint64_t _wrap;
  bool _started = false;
  uint64_t _first = 0;
  uint64_t _last = 0;
};

class DedupTable {
 public:
  enum class Verdict { fresh, duplicate, superseded, expired };

  struct Decision {
    Verdict verdict = Verdict::fresh;
    Position position = 0;  // for duplicate
  };

  // One tracked connection's committed state (checkers, tests).
  struct ConnectionState {
    ConnectionId id;
    uint64_t last_seen = 0;
    uint64_t window = 0;
    std::vector<std::pair<uint64_t, Position>> window_positions;  // series order
    friend bool operator==(const ConnectionState&, const ConnectionState&) = default;
  };

  // What the rule says for (connection, series), pending aside.
  Decision decide(const ConnectionId& connection, uint64_t series) const;

  // The leader accepted s as new (queued or re-proposed).
  void accept(const ConnectionId& connection, uint64_t series);
  // A write became committed (every replica, in log order): its entries,
  // then the expiry it carries. Times never go back along a bucket's log.
  void commit_write(const Write& write);
  // Leadership lost or restarted: forget what was accepted but not committed.
  void forget_accepted();

  // The newest committed write's time and the highest expire_before applied
  // (0 before any): a leader stamps its writes no earlier (Phaser::stamp), so
  // both grow along the log. A write without entries carries both unchanged:
  // it changes nothing here, so a replica that never sees one (a newcomer
  // skips the empty writes below its end) holds the same table.
  uint64_t time() const { return _time; }
  uint64_t expired_before() const { return _expired_before; }

  // The committed state, for a bucket checkpoint (phaser_codec.h). Only a
  // table with nothing accepted beyond what is committed (an image's:
  // Phaser::image) is encoded; decoding checks form, ids valid and sorted,
  // windows in increasing series, times not after the table's.
  //   table      = time expired_before n (issuer watermark)*n   issuers by id, watermark > 0
  //                m connection*m                 connections by id
  //   connection = issuer counter wrap last_seen last_window k (series position)*k, k >= 1
  void encode(Writer& out) const;
  static DedupTable decode(Reader& in);
  // Same committed and accepted state (tests, the simulator's checks).
  friend bool operator==(const DedupTable& a, const DedupTable& b);

  // The committed state in id order, and the watermarks (issuer, bound) in
  // issuer order, those above 0: for checkers that fold their own.
  std::vector<ConnectionState> tracked() const;
  std::vector<std::pair<ParticipantId, uint64_t>> watermarks() const;

  size_t connections() const { return _live; }
  // The bytes the table holds: every vector's capacity and the side maps'
  // entries (a hash node each). For monitoring and the memory benchmark.
  size_t memory_bytes() const;

  DedupTable();

 private:
  static constexpr uint32_t none = UINT32_MAX;

  struct Node {
    uint64_t counter = 0;
    uint64_t last_seen = 0;
    uint64_t series = 0;      // the highest committed: the window's last here
    Position position = 0;    // of `series`
    uint32_t issuer = none;   // index into _issuers; none: a free node
    uint32_t prev = none;     // last-seen order, oldest first
    uint32_t next = none;     // (free nodes: the free list)
    bool extra = false;       // an Extra in _extra; without one the window is {series}
    bool wrapped = false;     // its wrap in _wraps; without, series_wrap_default
  };
  static_assert(sizeof(Node) == 48);
  struct Extra {
    uint64_t window = 0;                                 // the window's id
    std::vector<std::pair<uint64_t, Position>> earlier;  // its series here before `series`
    friend bool operator==(const Extra&, const Extra&) = default;
  };

  struct Issuer {
    ParticipantId id = no_participant;
    uint64_t watermark = 0;
  };

  struct Hash {
    size_t operator()(const ConnectionId& id) const { return hash(id.issuer, id.counter); }
  };
  static uint64_t hash(ParticipantId issuer, uint64_t counter) {
    // Counters are dense per issuer: mix both halves (splitmix64's finaliser).
    uint64_t x = counter * 0x9e3779b97f4a7c15ull ^ issuer;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
  }

  uint32_t find(const ConnectionId& id) const;    // a node index, or none
  uint32_t issuer_index(ParticipantId id) const;  // or none
  bool below_watermark(const ConnectionId& id) const;
  uint32_t add_issuer(ParticipantId id);
  uint32_t add_node(const ConnectionId& id);
  void remove_node(uint32_t index);
  void link_last(uint32_t index);
  void unlink(uint32_t index);
  void grow_slots();
  void insert_slot(uint32_t index);
  void erase_slot(uint32_t index);
  void commit_entry(const BucketEntry& entry, Position position, uint64_t time);
  void expire(uint64_t before);
  uint64_t window_of(uint32_t index) const;
  ConnectionState state_of(uint32_t index) const;
  ConnectionId id_of(uint32_t index) const;
  uint64_t wrap_of(uint32_t index) const {
    return _nodes[index].wrapped ? _wraps.at(index) : series_wrap_default;
  }

  std::vector<Node> _nodes;
  std::vector<uint32_t> _slots;  // node indices, none when empty; size a power of two
  uint32_t _free = none;         // free nodes, through Node::next
  uint32_t _oldest = none;       // last-seen order
  uint32_t _newest = none;
  size_t _live = 0;
  std::vector<Issuer> _issuers;  // few: one per participant that issued ids
  std::unordered_map<uint32_t, Extra> _extra;  // by node index
  std::unordered_map<uint32_t, uint64_t> _wraps;  // by node index: wraps other than the default
  uint64_t _time = 0;
  uint64_t _expired_before = 0;
  // Leader: the highest series accepted beyond the committed one.
  std::unordered_map<ConnectionId, uint64_t, Hash> _accepted;
};

}  // namespace coworker::consensus
