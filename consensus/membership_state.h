// MembershipState: who is in the cluster, as the decided membership log says
// (DESIGN §1, §5). A pure fold of decided Paxos entries, identical on every
// participant for the same prefix.
//
// Owned by a participant's MembershipNode (core 0 of a server, a simulated
// participant), one per boot; rebuilt from a snapshot plus the log after it.
// It knows members (address, nonce, status), the cluster's parameters and
// which data directory arrived with which nonce; bucket governments are the
// MembershipApplication's (bucket/table.h), which the state consults for the
// last-survivor rule through GovernmentView, so consensus/ never includes
// bucket/.
//
// Rules of apply(slot, entry):
//   1. The first arrival (slot 1) bootstraps: it fixes cluster id, B and k.
//      Any later arrival with other values is refused, with the reason.
//   2. An arrival's id is its slot. Per data directory the highest
//      incarnation seen is kept with the id it got: the same nonce again is a
//      retried arrival (no new id), a lower incarnation is refused as stale,
//      a higher one is a new arrival (a re-arrival after departure).
//   3. leave{id} marks an active or unreachable member leaving.
//   4. depart{id} removes the member — unless it is the only member of some
//      current government: then it is marked unreachable instead (the last
//      survivor is never departed).
//   5. unreachable{id} marks it; return{id} makes an unreachable member active.
//   6. Voters follow the rule: the first V active members (not leaving, not
//      unreachable) in arrival order, V = the largest odd number <=
//      min(N, 5); if every member left is leaving, the leaving ones. The voters themselves live in the Paxos schedule; they
//      change through reconfigurations the membership leader proposes.
//   7. Noops, acks and reconfigurations change no member; acks are the
//      application's to judge.
// Every applied slot also extends `chain`, a digest of the decided prefix
// that a snapshot carries, so any two snapshots of one slot can be compared.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "consensus/codec.h"
#include "consensus/membership_entry.h"
#include "consensus/paxos_types.h"

namespace coworker::consensus {

enum class MemberStatus : uint8_t { active = 0, leaving = 1, unreachable = 2 };

struct Member {
  ParticipantId id = no_participant;
  std::string address;
  Nonce nonce;
  MemberStatus status = MemberStatus::active;
  friend bool operator==(const Member&, const Member&) = default;
};

// What applying one decided slot did.
struct Effect {
  enum class Kind : uint8_t {
    nothing,      // a noop, or an entry that changed nothing
    undecodable,  // not a membership entry (a bug; checked by the simulator)
    arrived,      // id: a new member
    retried,      // id: the arrival this nonce got before (decided once)
    refused,      // nonce, reason
    leaving,      // id
    departed,     // id, nonce (the one it arrived with)
    unreachable,  // id (converted: a depart of a last survivor)
    returned,     // id
    acks,         // acks: for the application
    reconfigured  // basis
  };
  Kind kind = Kind::nothing;
  ParticipantId id = no_participant;
  Nonce nonce;
  std::string reason;
  bool converted = false;
  std::vector<MigrationAck> acks;
  Slot basis = 0;
};

// The last-survivor rule needs the current governments (rule 4).
class GovernmentView {
 public:
  // True when `id` is the only member of some bucket's current government.
  virtual bool sole_member(ParticipantId id) const = 0;

 protected:
  ~GovernmentView() = default;
};

class MembershipState;

// What the membership node needs from the layer that derives bucket
// governments from the same log (bucket/table.h implements it; the simulator
// and the server hand one to the node). Called in slot order, after the
// state applied the slot.
class MembershipApplication : public GovernmentView {
 public:
  virtual void apply(Slot slot, const Effect& effect, const MembershipState& state) = 0;
  // In no current government: a leaving member may depart.
  virtual bool holds_nothing(ParticipantId id) const = 0;
  // Its part of a snapshot; decode replaces the whole application state.
  virtual void encode(Writer& writer) const = 0;
  virtual bool decode(Reader& reader) = 0;

 protected:
  ~MembershipApplication() = default;
};

// The chain digest: every decided entry, in slot order.
uint64_t chain_extend(uint64_t chain, const Entry& entry);

class MembershipState {
 public:
  // Applies decided slot `slot` == applied() + 1.
  Effect apply(Slot slot, const Entry& entry, const GovernmentView& view);

  Slot applied() const { return _applied; }
  uint64_t chain() const { return _chain; }
  bool bootstrapped() const { return _params.has_value(); }
  const ClusterParams& params() const;
  const std::map<ParticipantId, Member>& members() const { return _members; }
  const Member* member(ParticipantId id) const;
  bool is_member(ParticipantId id) const { return _members.count(id) != 0; }
  // An id that arrived at or before applied() and is no member any more
  // (or never was one): refused from then on.
  bool gone(ParticipantId id) const { return id != no_participant && id <= _applied && !is_member(id); }
  // The arrival this nonce got, if it was decided (the id may be gone since).
  std::optional<ParticipantId> arrival_of(const Nonce& nonce) const;
  // Data directory -> (highest incarnation, its id).
  const std::map<uint64_t, std::pair<uint64_t, ParticipantId>>& nonces() const { return _nonces; }
  std::vector<ParticipantId> ids() const;  // every member, sorted
  std::vector<ParticipantId> rule_voters() const;
  // The rule on candidates in arrival order: the first V, V the largest odd
  // number <= min(N, 5).
  static std::vector<ParticipantId> first_voters(std::vector<ParticipantId> candidates);

  // Snapshot form: a fixed header (magic, slot, chain) that any reader of a
  // snapshot can check, then the body.
  static constexpr char magic[9] = "cwmembr3";  // 2: the table's heirs; 3: their incarnations
  void encode(Writer& writer) const;
  static std::optional<MembershipState> decode(Reader& reader);
  struct Header {
    Slot slot = 0;
    uint64_t chain = 0;
  };
  static std::optional<Header> header(std::string_view bytes);

  // A cluster born with `members` (ids 1..N, in order) as of slot N: the
  // simulator's static start.
  static MembershipState genesis(const ClusterParams& params, const std::vector<Member>& members);

  void check_invariants() const;
  friend bool operator==(const MembershipState&, const MembershipState&) = default;

 private:
  Effect arrive(Slot slot, const Arrive& arrive);
  Effect depart(ParticipantId id, const GovernmentView& view);

  Slot _applied = 0;
  uint64_t _chain = 0;
  std::optional<ClusterParams> _params;
  std::map<ParticipantId, Member> _members;
  std::map<uint64_t, std::pair<uint64_t, ParticipantId>> _nonces;
};

}  // namespace coworker::consensus
