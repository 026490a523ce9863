// MembershipNode, the membership leader's side: acks and read leases (rule
// 2), departures, unreachable marks and returns (rule 3), voter changes
// (rule 4).
#include <algorithm>

#include "consensus/membership_node.h"
#include "consensus/assert.h"

namespace coworker::consensus {

// A leadership starts with a clean slate: silence counts from its start
// (every live member, heartbeating every heartbeat_ticks, has a whole
// departure timeout to reach the new leader), reports from grace_end(),
// acks from lease + margin after it began.
void MembershipNode::note_leadership() {
  const bool leading = _paxos != nullptr && _paxos->leading();
  if (leading && !_leading) {
    _leader_since = _now;
    _peers.clear();
    _reconfiguration_pending = false;
  }
  if (!leading) _peers.clear();
  _leading = leading;
}

bool MembershipNode::grants_leases() const {
  if (!_leading || _stuck) return false;
  if (!_paxos->holds_lease() || !_paxos->recovered_all()) return false;
  // The previous leader's acks have run out.
  return _now >= _leader_since + _config.timing.lease_ticks + _config.timing.margin_ticks;
}

void MembershipNode::on_member_heartbeat(ParticipantId from, const MemberHeartbeat& heartbeat,
                                         MembershipOutput& out) {
  if (from != id() && _state.gone(from)) {
    // A departed id is refused — by any member, with how far it decided and
    // how far its snapshot reaches (a retiring participant forgets its
    // accepts only once a majority of the voters in force hold what they
    // were for, rule 5). So we snapshot what we applied, and learn from it
    // if it knows more.
    if (heartbeat.applied > _paxos->decided_through()) _paxos->hear_of(from);
    if (_state.applied() > _paxos->compacted_through()) {
      merge(_paxos->compact(snapshot_now()), out);
    }
    send(from, MemberAck{heartbeat.sent, _paxos->decided_through(), true,
                         _paxos->compacted_through(), heartbeat.boot},
         out);
    return;
  }
  if (!_leading) return;                // the member finds the leader through Paxos
  if (!_state.is_member(from)) return;  // its arrival is not applied here yet
  Peer& peer = _peers[from];
  peer.last_heard = _now;
  peer.heard_applied = std::max(peer.heard_applied, heartbeat.applied);
  if (!heartbeat.recovering) {
    peer.recovering_since = 0;
  } else if (peer.recovering_since == 0) {
    peer.recovering_since = _now;
  }
  if (!grants_leases() || peer.withhold) return;
  // Rule 3: a member whose removal this leadership proposed is withheld
  // until that very proposal is decided (settle_removal), whichever boot of
  // it heartbeats.
  COWORKER_ASSERT(!peer.removal);
  const MemberAck ack{heartbeat.sent, _paxos->decided_through(), false, 0, heartbeat.boot};
  peer.last_acked = _now;
  if (from == id()) {
    on_member_ack(id(), ack, out);
  } else {
    send(from, ack, out);
  }
}

void MembershipNode::on_silent_report(ParticipantId replica) {
  if (!_leading || _now < grace_end()) return;  // reports count from grace_end()
  if (replica == id() || !_state.is_member(replica)) return;
  Peer& peer = _peers[replica];
  // A recovering member is not serving yet: reported only after the
  // recovery timeout.
  if (peer.recovering_since != 0 && _now < peer.recovering_since + _config.timing.recovery_ticks) {
    return;
  }
  peer.reported_at = _now;
}

void MembershipNode::tick_leader(MembershipOutput& out) {
  COWORKER_ASSERT(_leading);
  for (const auto& [member_id, member] : _state.members()) {
    Peer& peer = _peers[member_id];
    if (peer.first_seen == 0) peer.first_seen = _now;  // a newcomer's silence counts from here
    if (member.status == MemberStatus::unreachable) {
      // Heard again within this leadership: it returns (and grows back).
      // A leader marked while it was cut off hears itself: without its
      // return, a cluster it alone survived would have no rule voters and
      // no reconfiguration would ever retire the departed ones (seed
      // 30027 of phaser-members).
      if (peer.marked_at == 0) peer.marked_at = _state.applied();
      const bool heard = member_id == id() ||
                         (peer.last_heard != 0 && peer.heard_applied >= peer.marked_at &&
                          _now < peer.last_heard + _config.timing.departure_ticks);
      if (heard && !peer.return_proposed) {
        propose_entry(Return{member_id}, Paxos::Forwarding::no, out);
        peer.return_proposed = true;
      }
      continue;
    }
    if (member_id == id()) continue;
    consider_removal(member_id, peer, out);
    if (!_paxos->leading()) return;  // proposing handed the leadership over
  }
  maybe_reconfigure(out);
}

// Rule 3 for one member.
void MembershipNode::consider_removal(ParticipantId member_id, Peer& peer, MembershipOutput& out) {
  if (peer.removal) return;
  const MembershipTiming& timing = _config.timing;
  // From the leadership's start at the earliest: a departure then comes a
  // departure timeout >= lease + margin after it, when every read lease the
  // previous leader's acks granted has run out (they stopped before this
  // leadership's Paxos lease began).
  const Tick silent_since = std::max({peer.last_heard, peer.first_seen, _leader_since});
  const bool silent = _now >= silent_since + timing.departure_ticks;
  const bool reported = peer.reported_at != 0 && _now <= peer.reported_at + timing.departure_ticks;
  const Member* member = _state.member(member_id);
  COWORKER_ASSERT(member != nullptr);
  const bool done_leaving =
      member->status == MemberStatus::leaving && _application.holds_nothing(member_id);
  // Heartbeats that say `recovering` for the recovery timeout: a replay that
  // never ends (a hung disk behind a live process) must not keep the
  // buckets it leads from moving (DESIGN §3). Like reports, only from
  // grace_end() on: this leadership's withholding does not cover the acks of
  // the one before, and a recovery timeout may be shorter than a lease.
  const bool recovering_too_long = peer.recovering_since != 0 && _now >= grace_end() &&
                                   _now >= peer.recovering_since + timing.recovery_ticks;
  if (!silent && !reported && !done_leaving && !recovering_too_long) {
    peer.withhold = false;  // nothing decided yet: it may have its acks back
    return;
  }
  // Withhold acks, and wait until the last one we sent has run out.
  peer.withhold = true;
  if (_now < peer.last_acked + timing.lease_ticks + timing.margin_ticks) return;
  const bool alone = _application.sole_member(member_id);
  const MembershipEntry entry = alone ? MembershipEntry{Unreachable{member_id}}
                                      : MembershipEntry{Depart{member_id}};
  const size_t before = out.proposed.size();
  propose_entry(entry, Paxos::Forwarding::no, out);
  if (out.proposed.size() > before) peer.removal = out.proposed.back().id;
}

// Rule 4: the voters follow the rule, one change at a time.
void MembershipNode::maybe_reconfigure(MembershipOutput& out) {
  if (!_leading || _reconfiguration_pending || !_state.bootstrapped()) return;
  // The rule's voters from a basis nothing undecided follows: a removal
  // this leader proposed before, decided between the basis and the
  // reconfiguration, could leave a departed member the only voter (it
  // retired before it knew it was one: seed 269891298 of phaser-members).
  if (_paxos->pending_proposals() != 0 || _state.applied() < _paxos->decided_through()) return;
  const std::vector<ParticipantId> rule = _state.rule_voters();
  const std::vector<ParticipantId> latest = _paxos->latest_voters();
  if (rule.empty() || rule == latest) return;
  // Only voters we hear from now: a configuration whose majority is silent
  // could not even decide their departures (the rule changes with those).
  for (ParticipantId voter : rule) {
    if (voter == id()) continue;
    const auto peer = _peers.find(voter);
    if (peer == _peers.end() || peer->second.last_heard == 0 ||
        _now > peer->second.last_heard + 2 * _config.timing.heartbeat_ticks) {
      return;
    }
  }
  const std::string value = encode(Reconfigure{_state.applied()});
  Paxos::Proposed proposed =
      _paxos->propose_reconfiguration(value, latest, rule, Paxos::Forwarding::no);
  if (!proposed.id) return;
  _reconfiguration_pending = true;
  Entry record;
  record.id = *proposed.id;
  record.value = value;
  record.voters = rule;
  record.replaces = latest;
  out.proposed.push_back(std::move(record));
  merge(std::move(proposed.output), out);
  note_leadership();
}

}  // namespace coworker::consensus
