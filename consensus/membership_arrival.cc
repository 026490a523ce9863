// MembershipNode: this participant's own arrival (rule 1) and departure
// (rule 5) — a newcomer asking in, a member answering it, a departed member
// retiring until nothing needs its vote. The rest is in membership_node.cc
// and membership_leader.cc.
#include <algorithm>
#include <iterator>

#include "consensus/membership_node.h"
#include "consensus/assert.h"

namespace coworker::consensus {

// ---- Arrival (rule 1) ----

namespace {

// Arriving anew into the cluster we knew, not into whichever one answers.
void remember(const MembershipState& state, ParticipantId self, std::vector<std::string>* out,
              uint64_t* cluster) {
  if (state.bootstrapped()) *cluster = state.params().cluster;
  out->clear();
  for (const auto& [member, info] : state.members()) {
    if (member != self && !info.address.empty()) out->push_back(info.address);
  }
}

}  // namespace

void MembershipNode::remember_members(const MembershipState& state) {
  remember(state, _identity.id, &_remembered, &_remembered_cluster);
}

Identity abandoned_identity(const MembershipDurable& durable, bool records_damaged) {
  Identity next = durable.identity;
  COWORKER_ASSERT(next.data_dir != 0);
  if (next.id != no_participant && !durable.paxos.snapshot.bytes.empty()) {
    // Checksummed on disk, but it may be the damaged part: one that does
    // not decode leaves what the identity remembered, and --join.
    Reader reader(durable.paxos.snapshot.bytes);
    if (std::optional<MembershipState> state = MembershipState::decode(reader)) {
      remember(*state, next.id, &next.remembered, &next.remembered_cluster);
    }
  }
  next.id = no_participant;
  next.arriving = false;
  if (records_damaged) next.incarnation += uint64_t{1} << 32;
  next.void_through = next.incarnation;  // the next arrival is above it
  return next;
}

// Persists a new incarnation first when this is a new arrival (or `bump`:
// the last one's id is gone); a restart mid-arrival retries the same nonce.
void MembershipNode::start_arrival(MembershipOutput& out, bool bump, uint64_t at_least) {
  COWORKER_ASSERT(_paxos == nullptr);
  if (!_identity.arriving || bump) {
    Identity next = _identity;
    next.incarnation = std::max(next.incarnation, at_least) + 1;
    next.id = no_participant;
    next.arriving = true;
    persist_identity(next, out);
  }
  _arrival_due = _now;
}

void MembershipNode::tick_arrival(MembershipOutput& out) {
  const size_t known = _config.join.size() + _remembered.size();
  if (_now < _arrival_due || known == 0) return;
  _arrival_due = _now + _config.timing.arrival_retry_ticks;
  const size_t pick = _prng.below(known);
  const std::string& address =
      pick < _config.join.size() ? _config.join[pick] : _remembered[pick - _config.join.size()];
  ClusterParams params = _config.params;
  if (params.cluster == 0) params.cluster = _remembered_cluster;
  out.send.push_back(MembershipSend{no_participant, address,
                                    ArriveRequest{params, _config.address, nonce()}});
}

void MembershipNode::on_arrive_request(ParticipantId from, const std::string& address,
                                       const ArriveRequest& request, MembershipOutput& out) {
  COWORKER_ASSERT(_paxos != nullptr);
  if (from != no_participant || !_state.bootstrapped()) return;
  // A newcomer that joins by address does not know the cluster id yet
  // (cluster 0): it gets ours, and only buckets and replicas must agree.
  ClusterParams params = request.params;
  if (params.cluster == 0) params.cluster = _state.params().cluster;
  if (!(params == _state.params())) {
    ArriveAnswer refusal{request.nonce, no_participant, {}, {}, false, 0};
    refusal.refusal = "cluster " + std::to_string(_state.params().cluster) + " has " +
                      std::to_string(_state.params().buckets) + " buckets and " +
                      std::to_string(_state.params().replicas) + " replicas";
    out.send.push_back(MembershipSend{no_participant, address, std::move(refusal)});
    return;
  }
  const auto known = _state.nonces().find(request.nonce.data_dir);
  if (known != _state.nonces().end() && known->second.first >= request.nonce.incarnation) {
    if (known->second.first == request.nonce.incarnation) {
      answer_arrival(request.nonce, address, out);  // a retry of a decided arrival
    } else {
      ArriveAnswer stale{request.nonce, no_participant, {}, "stale incarnation", true,
                         known->second.first};
      out.send.push_back(MembershipSend{no_participant, address, std::move(stale)});
    }
    return;
  }
  if (_requests.count(request.nonce) != 0) return;  // proposed already; Paxos retries
  _requests[request.nonce] = address;
  COWORKER_ASSERT(params.cluster != 0);
  propose_entry(Arrive{request.address, request.nonce, params}, Paxos::Forwarding::yes, out);
}

void MembershipNode::answer_arrival(const Nonce& nonce, const std::string& address,
                                    MembershipOutput& out) {
  const std::optional<ParticipantId> id = _state.arrival_of(nonce);
  if (!id) return;
  // Paxos installed a newer snapshot we have not applied yet: our state's
  // schedule is gone from it. The newcomer retries (here or elsewhere).
  if (_state.applied() < _paxos->compacted_through()) return;
  ArriveAnswer answer{nonce, no_participant, {}, {}, false, 0};
  if (_state.is_member(*id)) {
    answer.id = *id;
    answer.snapshot = snapshot_now();
    _arrivals_answered++;
  } else {
    answer.gone = true;
    answer.refusal = "departed";
    answer.incarnation = nonce.incarnation;
  }
  out.send.push_back(MembershipSend{no_participant, address, std::move(answer)});
}

void MembershipNode::on_arrive_answer(const ArriveAnswer& answer, MembershipOutput& out) {
  if (!arriving() || answer.nonce != nonce()) return;
  if (answer.id != no_participant) {
    COWORKER_ASSERT(answer.snapshot.slot >= answer.id);
    Identity joined = _identity;
    joined.id = answer.id;
    joined.arriving = false;
    persist_identity(joined, out);
    out.persist.push_back(PersistRecord{PersistSnapshot{answer.snapshot}});
    Durable durable;
    durable.snapshot = answer.snapshot;  // the mirror of what was just persisted
    start_paxos(answer.id, durable, out);
    return;
  }
  if (answer.gone) {
    start_arrival(out, true, answer.incarnation);
    return;
  }
  _refused = answer.refusal;
}

// ---- Own departure (rule 5) ----

// The last slot a configuration counting our vote governs, as far as the
// schedule tells (noted before compaction prunes those configurations).
Slot MembershipNode::votes_until() const {
  const Schedule& schedule = _paxos->schedule();
  Slot until = 0;
  for (auto it = schedule.begin(); it != schedule.end(); ++it) {
    if (!contains(it->second.voters, id())) continue;
    const auto next = std::next(it);
    if (next != schedule.end()) until = std::max(until, next->first - 1);
  }
  return until;
}

void MembershipNode::note_votes() { _vote_until = std::max(_vote_until, votes_until()); }

// Rule 5: our own departure was decided (or a member told us). We stay a
// voter while a configuration that counts our vote governs what is not
// decided yet: the departure comes before the reconfiguration that removes
// us, which our old configuration must decide (we may be most of it, or all
// of it, or its leader).
void MembershipNode::retire(MembershipOutput& out) {
  COWORKER_ASSERT(_paxos != nullptr);
  COWORKER_ASSERT(!_retiring);
  _retiring = true;
  _lease_until = 0;
  _pending_acks.clear();
  // A retiring leader keeps its view of the members as it is: the acks it
  // sent still run, and a removal it proposed may still be decided (its
  // proposals are withdrawn below, but one already in a round is not), so
  // a member it withholds acks from stays withheld, and is not proposed
  // again, for the rest of this leadership. Clearing the view let it ack a
  // member whose departure was decided a moment later (seed 28752 of
  // member-voters); clearing only the proposal flags let the member, heard
  // again, have its acks back (seed 38335).
  for (const ProposalId& pending : _paxos->pending_ids()) out.withdrawn.push_back(pending);
  for (const ProposalId& withdrawn : _paxos->take_withdrawn()) out.withdrawn.push_back(withdrawn);
}

// Rule 5: nothing needs our vote any more, and what we voted on is safe
// without us: a majority of the voters now in force have it in a durable
// snapshot (members compact when a configuration comes into force, so
// this happens once they applied the slot it starts at). Our accepts are the
// durable copy of what our configurations decided; forgetting them earlier
// could lose decided slots if our successors then crashed.
bool MembershipNode::retired() const {
  COWORKER_ASSERT(_retiring);
  // What we vote on is known only once we applied what told us we are gone.
  if (_state.applied() < _retire_after) return false;
  if (_paxos->votes() || _paxos->leading()) return false;
  // Below our snapshot we cannot tell (after a restart) which slots we
  // voted on: all of them, then.
  const Slot needed = std::max({_vote_until, votes_until(), _paxos->compacted_through()});
  const std::vector<ParticipantId>& voters = _paxos->voters_for(_paxos->decided_through() + 1);
  size_t safe = 0;
  for (ParticipantId voter : voters) {
    const auto confirmed = _confirmed.find(voter);
    if (voter == id() || (confirmed != _confirmed.end() && confirmed->second >= needed)) safe++;
  }
  return safe >= majority_of(voters);
}

// Rule 5, the end.
void MembershipNode::depart_self(MembershipOutput& out) {
  COWORKER_ASSERT(_paxos != nullptr);
  for (const ProposalId& pending : _paxos->pending_ids()) out.withdrawn.push_back(pending);
  for (const ProposalId& withdrawn : _paxos->take_withdrawn()) out.withdrawn.push_back(withdrawn);
  _paxos.reset();
  _generation++;
  remember_members(_state);
  _state = MembershipState{};
  _lease_until = 0;
  _pending_acks.clear();
  _peers.clear();
  _requests.clear();
  _leading = false;
  _reconfiguration_pending = false;
  _retiring = false;
  Identity departed = _identity;
  departed.id = no_participant;
  departed.arriving = false;
  departed.remembered = _remembered;
  departed.remembered_cluster = _remembered_cluster;
  if (_left) {
    _exited = true;  // a graceful leave ends here (a restart arrives anew)
    persist_identity(departed, out);
    return;
  }
  persist_identity(departed, out);
  start_arrival(out, false, 0);
}

}  // namespace coworker::consensus
