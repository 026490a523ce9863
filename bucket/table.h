// BucketTable: each bucket's target and current government, derived from
// the decided membership log alone (DESIGN §1, §4, §5). Pure.
//
// One per participant boot, owned with the MembershipNode it serves (core 0
// of a server; a simulated participant), and the MembershipApplication the
// node applies every decided slot to, after the MembershipState. Other cores
// get copies. Every participant that applied the same prefix holds the same
// table: nothing here depends on local observations.
//
//   targets   the Distributor (bucket/distributor.h), fed in slot order:
//             an arrival or a return admits, a leave, departure or
//             unreachable mark withdraws;
//   current   per bucket {step, slot, replicas, heir}: the last government
//             a migration ack confirmed, minus participants departed at
//             later slots, and minus an unreachable one wherever another
//             member survives; step counts every change (confirmed acks and those
//             removals, and an unreachable mark moves the step of every
//             bucket not at its target too: it voids the migrations in
//             flight, whose newcomers may include the marked member), so an
//             ack is valid only against the government it was computed from;
//   next      for a bucket whose current government differs from its
//             target, the step to execute: the target itself when it only
//             drops or reorders members, else the current government
//             expanded by the newcomers (growth, relocation), after which
//             the target follows as a shrink/abdication.
//   heir      a government left with one member by a removal (departure,
//             unreachable mark) names the removed member and its data
//             directory, until an ack confirms a government of the bucket:
//             till then its sole member commits nothing (phaser.h step 4),
//             so the heir's copy holds every committed position, and the
//             participant holding that directory may adopt the bucket from
//             it when the sole member cannot confirm (its copy void, or it
//             is down: membership_host.h step 7). No heir when that
//             directory arrived anew while the removed member still was one
//             (it gave up the id at a boot that found damage: its copies
//             may have been reset since, heir_nonce_of); the sole member then
//             commits at once, as before heirs.
//
// Acks. An ack {bucket, step, government} confirms `government` when the
// bucket's step is still `step` at its slot and every participant it names
// is a member that is not unreachable; otherwise it is void (a departure
// before it falls back to the old government; one after it falls forward,
// as the departure then shrinks the new one).
//
// Invariants: no current government becomes empty (the state machine turns
// the departure of a last survivor into an unreachable mark, which keeps it
// where it is alone); governments hold distinct members; targets are even
// (the Distributor's). check_invariants() asserts what can be asserted
// locally; the simulator's checkers compare tables across participants.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <vector>

#include "bucket/distributor.h"
#include "consensus/membership_state.h"

namespace coworker::bucket {

using consensus::Slot;

struct CurrentGovernment {
  uint64_t step = 0;                    // government changes so far (acks and removals)
  Slot slot = 0;                        // the membership slot it is current as of
  std::vector<ParticipantId> replicas;  // leader first, then the usurper order
  // The member whose removal left `replicas` alone, with the data directory
  // and incarnation it arrived with: set until an ack confirms a government
  // (0: none).
  ParticipantId heir = no_participant;
  uint64_t heir_dir = 0;
  uint64_t heir_incarnation = 0;
  ParticipantId leader() const { return replicas.empty() ? no_participant : replicas[0]; }
  friend bool operator==(const CurrentGovernment&, const CurrentGovernment&) = default;
};

// A bucket's current government changed at `slot` (the phaser host calls
// Phaser::on_government for it).
struct GovernmentChange {
  Slot slot = 0;
  uint32_t bucket = 0;
};

class BucketTable final : public consensus::MembershipApplication {
 public:
  BucketTable(uint32_t buckets, uint32_t replicas);

  // consensus::MembershipApplication.
  void apply(Slot slot, const consensus::Effect& effect,
             const consensus::MembershipState& state) override;
  bool sole_member(ParticipantId id) const override;
  bool holds_nothing(ParticipantId id) const override;
  void encode(consensus::Writer& writer) const override;
  bool decode(consensus::Reader& reader) override;

  // Static start: `ids` (in arrival order) are members as of `slot`, each
  // bucket's current government is its target.
  void grow_instantly(const std::vector<ParticipantId>& ids, Slot slot);
  // The same targets, but every current government one member of its
  // target (the leader for even buckets, the last member for odd ones): the
  // migrations to the targets are still to come (the simulator's growth).
  void start_one_member(const std::vector<ParticipantId>& ids, Slot slot);

  uint32_t buckets() const { return static_cast<uint32_t>(_current.size()); }
  uint32_t replicas() const { return _distributor.replicas(); }
  const CurrentGovernment& current(uint32_t bucket) const { return _current.at(bucket); }
  std::vector<ParticipantId> target(uint32_t bucket) const { return _distributor.government(bucket); }
  ParticipantId target_leader(uint32_t bucket) const { return _distributor.leader(bucket); }
  const Distributor& distributor() const { return _distributor; }
  // The migration step to execute next, as the ack that would confirm it.
  std::optional<consensus::MigrationAck> next_step(uint32_t bucket) const;
  // Whether `ack` would be confirmed if it were applied now (its step is the
  // bucket's, every participant it names is a reachable member).
  bool ack_valid(const consensus::MigrationAck& ack, const consensus::MembershipState& state) const;
  // Buckets whose current government changed, in slot order, since the last
  // call.
  std::vector<GovernmentChange> take_changes();
  uint64_t acks_confirmed() const { return _acks_confirmed; }
  uint64_t acks_void() const { return _acks_void; }
  // Order-sensitive digest of targets and current governments (checkers).
  uint64_t digest() const;

  void check_invariants() const;

 private:
  void set_government(uint32_t bucket, CurrentGovernment government);
  static std::optional<consensus::Nonce> heir_nonce_of(const consensus::Nonce& nonce,
                                             const consensus::MembershipState& state);
  void remove_member(Slot slot, ParticipantId id, std::optional<consensus::Nonce> nonce,
                     bool keep_where_alone);
  void count(const std::vector<ParticipantId>& replicas, int delta);

  Distributor _distributor;
  std::vector<CurrentGovernment> _current;
  // Per participant: governments it is in, and those it is alone in (O(1)
  // answers to the node's questions).
  std::map<ParticipantId, uint32_t> _held;
  std::map<ParticipantId, uint32_t> _alone;
  std::set<ParticipantId> _unreachable;  // their sole buckets wait for them
  std::vector<GovernmentChange> _changes;
  uint64_t _acks_confirmed = 0;
  uint64_t _acks_void = 0;
};

}  // namespace coworker::bucket
