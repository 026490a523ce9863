// MembershipReference: the checkers' own fold of the decided membership log
// (issue 19 point 1) — members and their status, and each bucket's current
// government with its step — written from DESIGN §1, §4, §5 and the entry
// list of consensus/membership_entry.h, not from MembershipState::apply or
// BucketTable::apply. MembershipChecker folds every decided slot into it
// and into the code under test's state and table, and compares them after
// each slot (agree()); the phaser checks take their ground-truth
// governments from here.
//
// The rules:
//   1. arrive{address, nonce, params}: the first, at slot 1, fixes the
//      cluster's parameters; later ones with other parameters are refused.
//      Its id is its slot — unless its data directory arrived before with
//      the same incarnation (a retry: nothing new) or a higher one (stale:
//      refused). The first member holds every bucket alone, at step 0.
//   2. leave{id}: a member not leaving already becomes leaving.
//   3. depart{id}: a member alone in some current government is marked
//      unreachable instead (rule 4), unless it is already; any other member
//      leaves the cluster and every government it is in (each a new step).
//   4. unreachable{id}: a member not marked already is marked; it leaves
//      every government where another member survives (a new step each),
//      and every bucket whose government is not at its target moves to a
//      new step too (the migrations in flight are void).
//   5. return{id}: a marked member is active again.
//   6. acks: each confirms its government — which becomes the bucket's,
//      at the next step — when the bucket's step is still the ack's and it
//      names distinct members, none marked; otherwise it is void.
//   7. Anything else (a noop, a reconfiguration) changes nothing here.
//   8. Heirs (bucket/table.h): a removal by rule 3 or 4 that leaves a
//      government one member names the removed member and the data
//      directory and incarnation it arrived with, unless that directory
//      arrived anew while the member still was one (a higher incarnation:
//      it gave up the id after damage, so its copies are not what the
//      member acked); the next confirmed ack of that bucket (rule 6) ends
//      it. Only the heir's directory matters to the checkers: the
//      simulator plants no write in a copy its host may adopt
//      (membership_driver.cc maybe_plant). Whether the directory's holder
//      may adopt (it gave up that incarnation's id after the removal) is
//      its own to know, not the log's: the phaser checks catch a wrong
//      adoption by what it loses.
// Targets are the distributor's choice (bucket/distributor.h); the
// reference takes them from the table only where rule 4 needs them, and the
// checker checks them by their own rules (check_targets).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "bucket/table.h"
#include "consensus/membership_entry.h"
#include "consensus/membership_state.h"

namespace coworker::sim {

using consensus::ParticipantId;
using consensus::Slot;

// "[1 2 3]": ids in a checker's message.
std::string ids_text(const std::vector<ParticipantId>& ids);

class MembershipReference {
 public:
  struct Member {
    std::string address;
    consensus::Nonce nonce;
    consensus::MemberStatus status = consensus::MemberStatus::active;
  };
  struct Government {
    uint64_t step = 0;
    Slot slot = 0;  // of its last change
    std::vector<ParticipantId> replicas;
    ParticipantId heir = 0;  // rule 8 (0: none)
    uint64_t heir_dir = 0;
    uint64_t heir_incarnation = 0;  // the nonce it arrived with
  };
  using Targets = std::function<std::vector<ParticipantId>(uint32_t bucket)>;

  explicit MembershipReference(uint32_t buckets) : _governments(buckets) {}

  // The simulator's static start: a state and table made elsewhere, taken
  // as the reference's first values.
  void start(const consensus::MembershipState& state, const bucket::BucketTable& table);

  // Folds decided slot `slot` (`entry`: its decoded value, nullopt for a
  // noop or an undecodable one). `target_before`: each bucket's target
  // before this slot (rule 4).
  void fold(Slot slot, const std::optional<consensus::MembershipEntry>& entry,
            const Targets& target_before);

  // Where the code under test's state and table, having applied the same
  // slots, differ from the reference.
  std::optional<std::string> agree(const consensus::MembershipState& state,
                                   const bucket::BucketTable& table) const;

  const std::map<ParticipantId, Member>& members() const { return _members; }
  // Rule 8: whether some bucket's heir arrived with data directory `dir`.
  bool heir_dir(uint64_t dir) const;
  // Rule 8: acks confirmed while a heir was set that left its sole member
  // out (adoptions, as the simulator's summary counts them).
  uint64_t adoptions() const { return _adoptions; }
  const Government& government(uint32_t bucket) const { return _governments.at(bucket); }
  uint32_t buckets() const { return static_cast<uint32_t>(_governments.size()); }

 private:
  void arrive(Slot slot, const consensus::Arrive& arrive);
  void mark(Slot slot, ParticipantId id, const Targets& target_before);
  std::optional<consensus::Nonce> heir_nonce_for(const consensus::Nonce& nonce) const;
  void leave_governments(Slot slot, ParticipantId id, std::optional<consensus::Nonce> heir_nonce,
                         bool keep_where_alone);
  bool alone_somewhere(ParticipantId id) const;

  std::optional<consensus::ClusterParams> _params;
  std::map<ParticipantId, Member> _members;
  std::map<uint64_t, uint64_t> _incarnations;  // data directory -> highest arrived
  std::vector<Government> _governments;
  uint64_t _adoptions = 0;
};

}  // namespace coworker::sim
