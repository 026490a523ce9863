// Paxos: the proposer, the candidate and the leader (steps 1, 3, 4, 6, 7 and
// 9 of paxos.h).
#include <algorithm>
#include <array>
#include <bit>
#include <utility>

#include "consensus/paxos.h"
#include "consensus/assert.h"

namespace coworker::consensus {

// ---- Proposer ----

Paxos::Proposed Paxos::propose(std::string value, Forwarding forwarding) {
  Entry entry;
  entry.value = std::move(value);
  return propose_entry(std::move(entry), forwarding);
}

Paxos::Proposed Paxos::propose_reconfiguration(std::string value,
                                               std::vector<ParticipantId> replaces,
                                               std::vector<ParticipantId> voters,
                                               Forwarding forwarding) {
  COWORKER_ASSERT(valid_voters(voters));
  COWORKER_ASSERT(valid_voters(replaces));
  Entry entry;
  entry.value = std::move(value);
  entry.voters = std::move(voters);
  entry.replaces = std::move(replaces);
  return propose_entry(std::move(entry), forwarding);
}

Paxos::Proposed Paxos::propose_entry(Entry entry, Forwarding forwarding) {
  COWORKER_ASSERT(_started);
  Proposed result;
  if (_own.size() >= _limits.proposals_max) return result;
  if (forwarding == Forwarding::no && !leading()) return result;
  _next_sequence++;
  entry.id = ProposalId{_self, _durable.boots, _next_sequence};
  const auto [it, fresh] = _own.emplace(_next_sequence, entry);
  COWORKER_ASSERT(fresh);
  if (forwarding == Forwarding::no) _leader_only.insert(_next_sequence);
  result.id = entry.id;
  if (leading()) {
    enqueue(entry);
    // Group commit: while a round is in flight, entries wait and leave
    // together when it completes (or at the next tick).
    if (_instances.empty()) flush_queue(result.output);
  } else if (leader() != no_participant) {
    send(leader(), Forward{{std::move(entry)}}, result.output);
  }
  if (!_forward_timeout.running()) _forward_timeout.start(_timing.forward_ticks);
  check_invariants();
  return result;
}

void Paxos::forward_own(Output& out) {
  if (_own.empty()) return;
  _forward_timeout.start(_timing.forward_ticks);
  if (leading()) {
    for (const auto& [sequence, entry] : _own) enqueue(entry);
    return;
  }
  const ParticipantId target = leader();
  if (target == no_participant) return;
  Forward forward;
  for (const auto& [sequence, entry] : _own) {
    COWORKER_ASSERT(_leader_only.count(sequence) == 0);  // withdrawn when we stepped down
    if (forward.entries.size() == _limits.forward_entries_max) break;
    forward.entries.push_back(entry);
  }
  if (!forward.entries.empty()) send(target, std::move(forward), out);
}

void Paxos::on_forward(ParticipantId from, const Forward& forward, Output& out) {
  if (!leading()) return;  // the proposer retries at the leader it learns of
  Forwarded answer;
  for (const Entry& entry : forward.entries) {
    if (entry.noop() || entry.id.proposer != from) continue;
    // The proposer may have learned this slot inside a snapshot, where it
    // cannot see its ids: tell it, or it would forward the entry forever.
    if (knows_decided(entry.id)) {
      answer.decided.push_back(entry.id);
      _stats.forwards_dropped++;
      continue;
    }
    enqueue(entry);
  }
  if (!answer.decided.empty()) send(from, std::move(answer), out);
  if (_instances.empty()) flush_queue(out);
}

void Paxos::on_forwarded(ParticipantId from, const Forwarded& forwarded, Output& out) {
  for (const ProposalId& id : forwarded.decided) {
    if (id.proposer == _self && id.boot == _durable.boots) _own.erase(id.sequence);
  }
  COWORKER_ASSERT(_own.size() <= _limits.proposals_max);
  if (_own.empty()) _forward_timeout.stop();
}

std::vector<ProposalId> Paxos::pending_ids() const {
  std::vector<ProposalId> ids;
  for (const auto& [sequence, entry] : _own) ids.push_back(entry.id);
  return ids;
}

bool Paxos::knows_decided(const ProposalId& id) const { return _decided_ids.count(id) != 0; }

void Paxos::enqueue(const Entry& entry) {
  COWORKER_ASSERT(leading());
  COWORKER_ASSERT(!entry.noop());
  if (_queued_ids.count(entry.id) != 0 || knows_decided(entry.id)) {
    _stats.forwards_dropped++;
    return;
  }
  if (_queue.size() >= _limits.queue_max) return;  // the proposer retries
  _queue.push_back(entry);
  _queued_ids.insert(entry.id);
}

// ---- Candidate ----

void Paxos::restart_election_timeout() {
  if (!electable()) {
    _election_timeout.stop();
    return;
  }
  _election_timeout.start(_timing.election_timeout_ticks +
                          _prng.below(_timing.election_jitter_ticks + 1));
}

void Paxos::start_election(Output& out) {
  COWORKER_ASSERT(electable());
  COWORKER_ASSERT(_status != Status::leader);
  _status = Status::candidate;
  _stats.elections_started++;
  _highest_round = std::max({_highest_round, _durable.promised.round, _ballot.round});
  _ballot = Ballot{_highest_round + 1, _self};
  _highest_round = _ballot.round;
  COWORKER_ASSERT(_ballot > _durable.promised);
  _prepare_from = _decided_through + 1;
  _promises.clear();
  _prepared.clear();
  _covered.clear();
  _phase1_done = false;
  _catch_up_timeout.stop();
  restart_election_timeout();  // no leadership by then: try a higher ballot
  _retry_timeout.start(_timing.retry_ticks);
  try_finish_phase1(out);
}

// Prepares the voters of these configurations that have neither promised
// nor been asked since the last retry.
void Paxos::send_prepares(const Configurations& configurations, Output& out) {
  const Slot from = _status == Status::candidate ? _prepare_from : _decided_through + 1;
  for (const std::vector<ParticipantId>* voters : configurations) {
    for (ParticipantId voter : *voters) {
      if (voter == _self || _promises.count(voter) != 0 || _prepared.count(voter) != 0) continue;
      if (!is_member(voter)) continue;  // not known here yet: retried later
      _prepared.insert(voter);
      send(voter, Prepare{_ballot, from}, out);
    }
  }
}

void Paxos::tick_candidate(Output& out) {
  if (_election_timeout.fired()) {
    if (electable()) {
      start_election(out);
    } else {
      step_down();  // what we learned meanwhile made us a voter of nothing ahead
    }
    return;
  }
  if (_retry_timeout.fired()) {
    _retry_timeout.reset();
    _prepared.clear();
    if (!_phase1_done) {
      try_finish_phase1(out);
    }
  }
}

void Paxos::on_promise(ParticipantId from, const Promised& promise, Output& out) {
  if (promise.ballot != _ballot || promise.from > _decided_through + 1) return;
  if (_status == Status::candidate) {
    _promises[from] = promise;
    try_finish_phase1(out);
  } else if (_status == Status::leader) {
    // Step 13: a configuration ahead of us is being covered.
    _promises.emplace(from, promise);
    flush_queue(out);
  }
}

// The candidate's own acceptor promises last (paxos.h step 2).
void Paxos::promise_self(Output& out) {
  COWORKER_ASSERT(_status == Status::candidate);
  if (_durable.promised > _ballot) {
    step_down();  // our own acceptor promised someone higher meanwhile
    return;
  }
  if (lease_binds(_ballot)) return;  // a leader spoke to us: its lease binds us too
  if (_durable.promised < _ballot) persist(PersistPromise{_ballot}, out);
  Promised own{_ballot, _prepare_from, _durable.snapshot.slot, {}};
  for (auto it = _durable.accepted.lower_bound(own.from); it != _durable.accepted.end(); ++it) {
    own.accepted.push_back(it->second);
  }
  _promises[_self] = std::move(own);
}

// Step 13: a majority of every configuration known so far, then our own
// promise, then (step 3) whatever a promiser compacted.
void Paxos::try_finish_phase1(Output& out) {
  if (_status != Status::candidate) return;
  std::map<Slot, AcceptedEntry> best = best_reported(_prepare_from);
  Configurations configurations = phase1_configurations(best);
  send_prepares(configurations, out);
  if (_promises.count(_self) == 0) {
    for (const std::vector<ParticipantId>* voters : configurations) {
      if (!promised_majority(*voters, true)) return;
    }
    promise_self(out);
    if (_status != Status::candidate || _promises.count(_self) == 0) return;
    best = best_reported(_prepare_from);  // our own report may name another configuration
    configurations = phase1_configurations(best);
    send_prepares(configurations, out);
  }
  for (const std::vector<ParticipantId>* voters : configurations) {
    if (!promised_majority(*voters, false)) return;
  }
  COWORKER_ASSERT(_durable.promised == _ballot);
  _phase1_done = true;
  // Step 3: learn every slot some promiser compacted before proposing.
  Slot compacted = 0;
  ParticipantId source = no_participant;
  for (const auto& [voter, promise] : _promises) {
    if (promise.compacted_through > compacted) {
      compacted = promise.compacted_through;
      source = voter;
    }
  }
  if (compacted > _decided_through) {
    COWORKER_ASSERT(source != _self);  // our own compaction point is <= decided
    if (!_catch_up_timeout.running()) request_catch_up(source, out);
    return;
  }
  become_leader(out);
}

void Paxos::on_reject(ParticipantId from, const Reject& reject, Output& out) {
  _highest_round = std::max(_highest_round, reject.promised.round);
  if (_status == Status::follower || reject.ballot != _ballot) return;
  // A promise above ours ends the candidacy or leadership; a lease refusal
  // only means waiting (the retry timer asks again).
  if (reject.promised > _ballot) step_down();
}

// ---- Leader ----

void Paxos::become_leader(Output& out) {
  COWORKER_ASSERT(_status == Status::candidate);
  COWORKER_ASSERT(_phase1_done);
  for (const auto& [voter, promise] : _promises) {
    COWORKER_ASSERT(promise.compacted_through <= _decided_through);
  }
  _status = Status::leader;
  _leading_since = _now;
  _stats.elections_won++;
  _recovered.clear();
  _queue.clear();
  _queued_ids.clear();
  _instances.clear();
  _covered.clear();
  _recovered_through = _decided_through;
  _next_slot = _decided_through + 1;
  // Step 4: per open slot, the entry of the highest ballot any promiser
  // accepted. Every configuration governing these slots that we know of has
  // a majority among the promisers (step 13).
  recover_from(_next_slot);
  auto it = _schedule.upper_bound(_next_slot);
  COWORKER_ASSERT(it != _schedule.begin());
  for (--it; it != _schedule.end(); ++it) {
    if (promised_majority(it->second.voters, false)) _covered.insert(it->first);
  }
  _peers.clear();
  _lease_expiry = 0;
  _majority_ack = _now;
  _leader_ballot = _ballot;
  _leader_heard = true;
  _commit_seen = _decided_through;
  _election_timeout.stop();
  _catch_up_timeout.stop();
  for (const auto& [sequence, entry] : _own) enqueue(entry);
  send_heartbeats(out);
  _heartbeat_timeout.start(_timing.heartbeat_ticks);
  _retry_timeout.start(_timing.retry_ticks);
  flush_queue(out);
}

// Re-derives what to re-propose in slots >= from (none proposed yet) from
// every promise at hand.
void Paxos::recover_from(Slot from) {
  COWORKER_ASSERT(from >= _next_slot);
  for (auto it = _recovered.lower_bound(from); it != _recovered.end();) {
    if (!it->second.noop()) _queued_ids.erase(it->second.id);
    it = _recovered.erase(it);
  }
  for (auto& [slot, accepted] : best_reported(from)) {
    if (!accepted.entry.noop()) _queued_ids.insert(accepted.entry.id);
    _recovered_through = std::max(_recovered_through, slot);
    _recovered.emplace(slot, std::move(accepted.entry));
  }
}

// Step 13 while leading: before proposing `slot`, a majority of its voters
// must have promised our ballot; their reports may change what we re-propose
// from here on.
bool Paxos::cover(Slot slot, Output& out) {
  auto it = _schedule.upper_bound(slot);
  COWORKER_ASSERT(it != _schedule.begin());
  --it;
  if (_covered.count(it->first) != 0) return true;
  if (!promised_majority(it->second.voters, false)) {
    send_prepares({&it->second.voters}, out);
    return false;
  }
  _covered.insert(it->first);
  recover_from(slot);
  return true;
}

void Paxos::step_down() {
  COWORKER_ASSERT(_status != Status::follower);
  if (_status == Status::leader) _stats.step_downs++;
  // Leader-only proposals that did not reach a slot die with the leadership.
  for (uint64_t sequence : _leader_only) {
    const auto it = _own.find(sequence);
    if (it == _own.end()) continue;
    _withdrawn.push_back(it->second.id);
    _own.erase(it);
  }
  _leader_only.clear();
  _status = Status::follower;
  _promises.clear();
  _prepared.clear();
  _covered.clear();
  _phase1_done = false;
  _instances.clear();
  _queue.clear();
  _queued_ids.clear();
  _recovered.clear();
  _peers.clear();
  _lease_expiry = 0;
  _heartbeat_timeout.stop();
  _retry_timeout.stop();
  _catch_up_timeout.stop();
  restart_election_timeout();
}

// Assigns slots to recovered and queued entries, within the window, and
// sends them to every member in batches.
void Paxos::flush_queue(Output& out) {
  COWORKER_ASSERT(leading());
  COWORKER_ASSERT(_durable.promised == _ballot);
  std::vector<SlotEntry> batch;
  const auto send_batch = [&] {
    for (ParticipantId member : _members) {
      if (member != _self) send(member, Accept{_ballot, _decided_through, batch}, out);
    }
    batch.clear();
  };
  while (_next_slot <= _decided_through + _limits.window_slots_max) {
    const std::vector<ParticipantId>& voters = voters_for(_next_slot);
    if (!voter_from(_next_slot)) {
      // Step 15: a voter of nothing from here on. Decide what we have in
      // flight, then step down and let the new voters elect (one that lags
      // catches up from any member: leaderless members probe). Below that,
      // we may propose in slots we do not vote on: a leader elected by a
      // later configuration finishes the earlier one's slots.
      if (_instances.empty()) {
        if (!batch.empty()) send_batch();
        _stats.hand_overs++;
        step_down();
        return;
      }
      break;
    }
    if (!cover(_next_slot, out)) break;
    Entry entry;  // a noop unless something below fills it
    if (_next_slot <= _recovered_through &&
        _now < _leading_since + _timing.recovered_hold_ticks) {
      break;  // recovered entries wait (tick_leader flushes again)
    }
    if (_next_slot <= _recovered_through) {
      const auto it = _recovered.find(_next_slot);
      if (it != _recovered.end()) {
        entry = std::move(it->second);
        _recovered.erase(it);
      }
    } else if (!_queue.empty()) {
      entry = std::move(_queue.front());
      _queue.pop_front();
    } else if (_schedule.upper_bound(_next_slot) != _schedule.end()) {
      _stats.noops_filled++;  // step 15: bring the next configuration into force
    } else {
      break;
    }
    const Slot slot = _next_slot++;
    const bool vote = contains(voters, _self);
    if (vote) persist(PersistAccept{AcceptedEntry{slot, _ballot, entry}}, out);  // our own vote
    batch.push_back(SlotEntry{slot, entry});
    const bool chosen = vote && majority_of(voters) == 1;
    std::vector<ParticipantId> accepted;
    if (vote) accepted.push_back(_self);
    _instances.emplace(slot, Instance{std::move(entry), std::move(accepted), chosen, _now});
    if (batch.size() == _limits.batch_entries_max) send_batch();
  }
  if (!batch.empty()) send_batch();
  advance_chosen(out);
  if (leading()) update_lease();  // a reconfiguration in our window counts at once (step 14)
}

void Paxos::on_accepted(ParticipantId from, const Accepted& accepted, Output& out) {
  if (!leading() || accepted.ballot != _ballot) return;
  for (Slot slot : accepted.slots) {
    const auto it = _instances.find(slot);
    if (it == _instances.end()) continue;  // decided already
    Instance& instance = it->second;
    const std::vector<ParticipantId>& voters = voters_for(slot);
    COWORKER_ASSERT(contains(instance.accepted, _self) == contains(voters, _self));  // own vote
    if (!contains(voters, from)) continue;  // step 12: not a voter of this slot
    const auto at = std::lower_bound(instance.accepted.begin(), instance.accepted.end(), from);
    if (at == instance.accepted.end() || *at != from) instance.accepted.insert(at, from);
    size_t votes = 0;
    for (ParticipantId id : instance.accepted) votes += contains(voters, id) ? 1 : 0;
    if (votes >= majority_of(voters)) instance.chosen = true;
  }
  advance_chosen(out);
  if (leading()) flush_queue(out);
}

// Decides the chosen instances at the front, in slot order.
void Paxos::advance_chosen(Output& out) {
  const size_t decided_before = out.decided.size();
  while (!_instances.empty() && _instances.begin()->second.chosen) {
    const auto it = _instances.begin();
    COWORKER_ASSERT(it->first == _decided_through + 1);
    Entry entry = std::move(it->second.entry);
    std::vector<ParticipantId> quorum = std::move(it->second.accepted);
    if (!entry.noop()) _queued_ids.erase(entry.id);
    _instances.erase(it);
    decide(_decided_through + 1, std::move(entry), std::move(quorum), out);
  }
  if (!_instances.empty()) COWORKER_ASSERT(_instances.begin()->first == _decided_through + 1);
  if (out.decided.size() > decided_before) _commit_seen = _decided_through;
}

void Paxos::send_heartbeats(Output& out) {
  COWORKER_ASSERT(leading());
  _leader_contact = _now;  // our own acceptor is bound by our lease too
  bind_to(_self);
  for (ParticipantId member : _members) {
    if (member != _self) send(member, Heartbeat{_ballot, _now, _decided_through}, out);
  }
  update_lease();
}

void Paxos::on_heartbeat_ack(ParticipantId from, const HeartbeatAck& ack, Output& out) {
  if (!leading() || ack.ballot != _ballot || ack.sent > _now) return;
  PeerProgress& progress = _peers[from];
  progress.decided_through = std::max(progress.decided_through, ack.decided_through);
  progress.last_ack_tick = _now;
  progress.acked_sent = std::max(progress.acked_sent, ack.sent);
  progress.acked = true;
  COWORKER_ASSERT(progress.acked_sent <= _now);
  update_lease();
  COWORKER_ASSERT(_lease_expiry <= _now + _timing.lease_ticks);
}

// Step 7: the lease runs from the latest heartbeat a majority acked — a
// majority of every configuration the lease must count (step 14).
void Paxos::update_lease() {
  COWORKER_ASSERT(leading());
  std::array<Tick, voters_max> sent{};
  std::array<Tick, voters_max> arrived{};
  // Fills sent/arrived for these voters; returns how many acked.
  const auto collect = [&](const std::vector<ParticipantId>& voters) {
    COWORKER_ASSERT(voters.size() <= voters_max);
    size_t count = 0;
    for (ParticipantId voter : voters) {
      if (voter == _self) {
        sent[count] = _leader_contact;
        arrived[count] = _now;
        count++;
        continue;
      }
      const auto it = _peers.find(voter);
      if (it == _peers.end() || !it->second.acked) continue;
      sent[count] = it->second.acked_sent;
      arrived[count] = it->second.last_ack_tick;
      count++;
    }
    std::sort(sent.begin(), sent.begin() + count, std::greater<Tick>());
    std::sort(arrived.begin(), arrived.begin() + count, std::greater<Tick>());
    return count;
  };
  // Step 14: every configuration the lease counts must have promised our
  // ballot (else a lower ballot its voters promised may decide there: a
  // later configuration can be led by a lower ballot that never met ours)
  // and acked. Recomputed, not kept: a configuration that comes to count
  // (a reconfiguration in our window) ends the lease until it does both.
  Tick expiry = UINT64_MAX;
  for (const std::vector<ParticipantId>* voters : lease_configurations()) {
    const size_t majority = majority_of(*voters);
    if (!promised_majority(*voters, false) || collect(*voters) < majority) {
      expiry = 0;
      break;
    }
    expiry = std::min(expiry, sent[majority - 1] + _timing.lease_ticks - _timing.lease_margin_ticks);
  }
  _lease_expiry = expiry;
  // Liveness (leader timeout) asks only the voters of the next slot.
  const std::vector<ParticipantId>& next = voters_for(_decided_through + 1);
  if (collect(next) >= majority_of(next)) {
    _majority_ack = std::max(_majority_ack, arrived[majority_of(next) - 1]);
  }
}

void Paxos::resend_accepts(Output& out) {
  std::map<ParticipantId, std::vector<SlotEntry>> batches;
  for (auto& [slot, instance] : _instances) {
    if (instance.chosen || instance.sent + _timing.retry_ticks > _now) continue;
    instance.sent = _now;
    for (ParticipantId voter : voters_for(slot)) {
      if (contains(instance.accepted, voter)) continue;
      batches[voter].push_back(SlotEntry{slot, instance.entry});
    }
  }
  for (auto& [voter, entries] : batches) {
    COWORKER_ASSERT(voter != _self);
    for (size_t at = 0; at < entries.size(); at += _limits.batch_entries_max) {
      const size_t end = std::min(entries.size(), at + _limits.batch_entries_max);
      Accept accept{_ballot, _decided_through, {}};
      accept.entries.assign(entries.begin() + static_cast<std::ptrdiff_t>(at),
                            entries.begin() + static_cast<std::ptrdiff_t>(end));
      send(voter, std::move(accept), out);
    }
  }
}

void Paxos::tick_leader(Output& out) {
  update_lease();
  if (_now > _majority_ack + _timing.leader_timeout_ticks) {
    // Nobody acks us: stop claiming leadership so a reachable voter can lead.
    step_down();
    return;
  }
  if (_heartbeat_timeout.fired()) {
    _heartbeat_timeout.reset();
    send_heartbeats(out);
  }
  if (_retry_timeout.fired()) {
    _retry_timeout.reset();
    _prepared.clear();  // step 13: ask uncovered voters again
    resend_accepts(out);
  }
  // Step 14: cover what the lease counts as soon as it counts it, not only
  // when the slots reach it (step 13), so the lease resumes at once.
  const Configurations configurations = lease_configurations();
  for (const std::vector<ParticipantId>* voters : configurations) {
    if (!promised_majority(*voters, false)) send_prepares({voters}, out);
  }
  flush_queue(out);
}

}  // namespace coworker::consensus
