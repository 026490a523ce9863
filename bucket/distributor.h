// Distributor: which participant leads each bucket, and each bucket's target
// government. Pure and deterministic: every participant folds the same
// decided membership entries through it and gets the same table.
//
// Owned by whoever applies the membership log (core 0 of a participant, a
// simulated participant); copied, never shared, to other cores.
//
// Rules (DESIGN §1, §5):
//   1. Eligible participants are members that are neither leaving nor marked
//      unreachable, ordered by arrival id (the arrival order).
//   2. Leadership is even: the leaderships of any two eligible participants
//      differ by at most one (max − min ≤ 1).
//   3. Moves are few: an arrival takes exactly as many leaderships as balance
//      needs, each from a participant holding the most; a withdrawal hands each
//      of the leaver's buckets to a participant holding the fewest, preferring
//      the leaver's right neighbour (usually already a replica there).
//   4. A bucket's target government is its leader followed by (k−1)/2
//      neighbours on each side in arrival order, wrapping, right before left at
//      each distance (the usurper order); with k eligible participants or
//      fewer, all of them, leader first, then the ones after it in arrival
//      order, wrapping.
//
//   eligible (arrival order):   1   2   3   4   5
//   bucket 7 led by 3, k = 3:  [3,  4,  2]
//
// Invariants (check_invariants): every bucket has a leader iff some participant
// is eligible; leaders are eligible; rule 2 holds.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

#include "consensus/codec.h"
#include "consensus/ids.h"

namespace coworker::bucket {

using consensus::ParticipantId;
using consensus::no_participant;  // arrival ids start at 1

class Distributor {
 public:
  Distributor(uint32_t buckets, uint32_t replicas);

  // A participant becomes eligible: a decided arrival, or the return of one
  // marked unreachable (it comes back by growth). Ids need not be the largest.
  void admit(ParticipantId id);
  // A participant stops being eligible: leave, depart or unreachable.
  void withdraw(ParticipantId id);

  uint32_t buckets() const { return static_cast<uint32_t>(_leader.size()); }
  uint32_t replicas() const { return _replicas; }
  const std::vector<ParticipantId>& eligible() const { return _eligible; }
  bool is_eligible(ParticipantId id) const;

  ParticipantId leader(uint32_t bucket) const { return _leader[bucket]; }
  std::vector<ParticipantId> government(uint32_t bucket) const;
  // Whether `replicas` is exactly government(bucket), in order, without
  // building it: the membership host asks every bucket on every tick.
  bool is_government(uint32_t bucket, const std::vector<ParticipantId>& replicas) const;
  uint32_t leaderships(ParticipantId id) const;

  // Leadership changes since construction (each bucket handed over counts 1).
  uint64_t moves() const { return _moves; }

  // Snapshot form (part of the membership snapshot): the history-dependent
  // leader of each bucket and the eligible participants. Decoding checks
  // the invariants instead of asserting them (bytes come from disks).
  void encode(consensus::Writer& writer) const;
  static std::optional<Distributor> decode(consensus::Reader& reader, uint32_t buckets,
                                           uint32_t replicas);
  friend bool operator==(const Distributor&, const Distributor&) = default;

  void check_invariants() const;

 private:
  // fn(id) for each member of government(bucket), leader first; the
  // bucket has a leader.
  template <typename Fn>
  void for_each_member(uint32_t bucket, Fn fn) const;
  size_t index_of(ParticipantId id) const;
  void hand_over(uint32_t bucket, ParticipantId to);

  uint32_t _replicas;
  std::vector<ParticipantId> _leader;    // per bucket; no_participant if none
  std::vector<ParticipantId> _eligible;  // sorted by arrival id
  std::vector<uint32_t> _count;          // leaderships, parallel to _eligible
  uint64_t _moves = 0;
};

}  // namespace coworker::bucket
