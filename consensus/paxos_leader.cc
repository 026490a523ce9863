// Paxos: the proposer, the candidate and the leader (steps 1, 3, 4, 6, 7 and
// 9 of paxos.h).
#include <algorithm>
#include <array>
#include <bit>
#include <utility>

#include "consensus/paxos.h"
#include "reactor/assert.h"

namespace coworker::consensus {

// ---- Proposer ----

Paxos::Proposed Paxos::propose(std::string value) {
  COWORKER_ASSERT(_started);
  Proposed result;
  if (_own.size() >= _limits.proposals_max) return result;
  _next_sequence++;
  Entry entry{ProposalId{_self, _durable.boots, _next_sequence}, std::move(value)};
  const auto [it, fresh] = _own.emplace(_next_sequence, entry);
  COWORKER_ASSERT(fresh);
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
    if (forward.entries.size() == _limits.forward_entries_max) break;
    forward.entries.push_back(entry);
  }
  send(target, std::move(forward), out);
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
  if (!_configuration.is_voter(_self)) return;
  _election_timeout.start(_timing.election_timeout_ticks +
                          _prng.below(_timing.election_jitter_ticks + 1));
}

void Paxos::start_election(Output& out) {
  COWORKER_ASSERT(_configuration.is_voter(_self));
  COWORKER_ASSERT(_status != Status::leader);
  _status = Status::candidate;
  _stats.elections_started++;
  _highest_round = std::max({_highest_round, _durable.promised.round, _ballot.round});
  _ballot = Ballot{_highest_round + 1, _self};
  _highest_round = _ballot.round;
  COWORKER_ASSERT(_ballot > _durable.promised);
  _promises.clear();
  _phase1_done = false;
  _catch_up_timeout.stop();
  restart_election_timeout();  // no leadership by then: try a higher ballot
  _retry_timeout.start(_timing.retry_ticks);
  send_prepares(out);
  if (_configuration.majority() == 1) promise_self(out);
  try_finish_phase1(out);
}

void Paxos::send_prepares(Output& out) {
  for (ParticipantId voter : _configuration.voters) {
    if (voter == _self || _promises.count(voter) != 0) continue;
    send(voter, Prepare{_ballot, _decided_through + 1}, out);
  }
}

void Paxos::tick_candidate(Output& out) {
  if (_election_timeout.fired()) {
    start_election(out);
    return;
  }
  if (_retry_timeout.fired()) {
    _retry_timeout.reset();
    if (!_phase1_done) send_prepares(out);
  }
}

void Paxos::on_promise(ParticipantId from, const Promised& promise, Output& out) {
  if (_status != Status::candidate || promise.ballot != _ballot) return;
  if (!_configuration.is_voter(from) || promise.from > _decided_through + 1) return;
  _promises[from] = promise;
  if (_promises.count(_self) == 0 && _promises.size() + 1 >= _configuration.majority()) {
    promise_self(out);
  }
  try_finish_phase1(out);
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
  Promised own{_ballot, _decided_through + 1, _durable.snapshot.slot, {}};
  for (auto it = _durable.accepted.lower_bound(own.from); it != _durable.accepted.end(); ++it) {
    own.accepted.push_back(it->second);
  }
  _promises[_self] = std::move(own);
}

void Paxos::try_finish_phase1(Output& out) {
  if (_status != Status::candidate || _promises.count(_self) == 0) return;
  if (_promises.size() < _configuration.majority()) return;
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
  // Step 4: per open slot, the entry of the highest ballot any promiser
  // accepted. Two promisers reporting one (slot, ballot) must agree
  // (invariant 2 across acceptors).
  std::map<Slot, AcceptedEntry> best;
  for (const auto& [voter, promise] : _promises) {
    COWORKER_ASSERT(promise.compacted_through <= _decided_through);
    for (const AcceptedEntry& accepted : promise.accepted) {
      if (accepted.slot <= _decided_through) continue;
      auto [it, fresh] = best.try_emplace(accepted.slot, accepted);
      if (fresh) continue;
      if (it->second.ballot == accepted.ballot) {
        COWORKER_ASSERT(it->second.entry == accepted.entry);
      } else if (it->second.ballot < accepted.ballot) {
        it->second = accepted;
      }
    }
  }
  _status = Status::leader;
  _stats.elections_won++;
  _promises.clear();
  _recovered.clear();
  _queue.clear();
  _queued_ids.clear();
  _instances.clear();
  _recovered_through = best.empty() ? _decided_through : best.rbegin()->first;
  for (auto& [slot, accepted] : best) {
    if (!accepted.entry.noop()) _queued_ids.insert(accepted.entry.id);
    _recovered.emplace(slot, std::move(accepted.entry));
  }
  _next_slot = _decided_through + 1;
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

void Paxos::step_down() {
  COWORKER_ASSERT(_status != Status::follower);
  if (_status == Status::leader) _stats.step_downs++;
  _status = Status::follower;
  _promises.clear();
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
  const uint64_t self_bit = uint64_t{1} << voter_index(_self);
  while (_next_slot <= _decided_through + _limits.window_slots_max) {
    Entry entry;  // a noop unless something below fills it
    if (_next_slot <= _recovered_through) {
      const auto it = _recovered.find(_next_slot);
      if (it != _recovered.end()) {
        entry = std::move(it->second);
        _recovered.erase(it);
      }
    } else if (!_queue.empty()) {
      entry = std::move(_queue.front());
      _queue.pop_front();
    } else {
      break;
    }
    const Slot slot = _next_slot++;
    persist(PersistAccept{AcceptedEntry{slot, _ballot, entry}}, out);  // our own vote
    batch.push_back(SlotEntry{slot, entry});
    const bool chosen = std::popcount(self_bit) >= static_cast<int>(_configuration.majority());
    _instances.emplace(slot, Instance{std::move(entry), self_bit, chosen, _now});
    if (batch.size() == _limits.batch_entries_max) send_batch();
  }
  if (!batch.empty()) send_batch();
  advance_chosen(out);
}

void Paxos::on_accepted(ParticipantId from, const Accepted& accepted, Output& out) {
  if (!leading() || accepted.ballot != _ballot || !_configuration.is_voter(from)) return;
  const uint64_t bit = uint64_t{1} << voter_index(from);
  for (Slot slot : accepted.slots) {
    const auto it = _instances.find(slot);
    if (it == _instances.end()) continue;  // decided already
    Instance& instance = it->second;
    COWORKER_ASSERT(instance.accepted_mask & (uint64_t{1} << voter_index(_self)));  // our own vote
    instance.accepted_mask |= bit;
    if (std::popcount(instance.accepted_mask) >= static_cast<int>(_configuration.majority())) {
      instance.chosen = true;
    }
  }
  advance_chosen(out);
  flush_queue(out);
}

// Decides the chosen instances at the front, in slot order.
void Paxos::advance_chosen(Output& out) {
  const size_t decided_before = out.decided.size();
  while (!_instances.empty() && _instances.begin()->second.chosen) {
    const auto it = _instances.begin();
    COWORKER_ASSERT(it->first == _decided_through + 1);
    Entry entry = std::move(it->second.entry);
    if (!entry.noop()) _queued_ids.erase(entry.id);
    _instances.erase(it);
    decide(_decided_through + 1, std::move(entry), out);
  }
  if (!_instances.empty()) COWORKER_ASSERT(_instances.begin()->first == _decided_through + 1);
  if (out.decided.size() > decided_before) _commit_seen = _decided_through;
}

void Paxos::send_heartbeats(Output& out) {
  COWORKER_ASSERT(leading());
  _leader_contact = _now;  // our own acceptor is bound by our lease too
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

// Step 7: the lease runs from the latest heartbeat a majority acked.
void Paxos::update_lease() {
  COWORKER_ASSERT(leading());
  std::array<Tick, 64> sent{};
  std::array<Tick, 64> arrived{};
  size_t count = 0;
  for (ParticipantId voter : _configuration.voters) {
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
  const size_t majority = _configuration.majority();
  if (count < majority) return;
  std::sort(sent.begin(), sent.begin() + count, std::greater<Tick>());
  std::sort(arrived.begin(), arrived.begin() + count, std::greater<Tick>());
  _lease_expiry = std::max(_lease_expiry, sent[majority - 1] + _timing.lease_ticks);
  _majority_ack = std::max(_majority_ack, arrived[majority - 1]);
}

void Paxos::resend_accepts(Output& out) {
  std::map<ParticipantId, std::vector<SlotEntry>> batches;
  for (auto& [slot, instance] : _instances) {
    if (instance.chosen || instance.sent + _timing.retry_ticks > _now) continue;
    instance.sent = _now;
    for (size_t i = 0; i < _configuration.voters.size(); i++) {
      if ((instance.accepted_mask >> i) & 1) continue;
      batches[_configuration.voters[i]].push_back(SlotEntry{slot, instance.entry});
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
    resend_accepts(out);
  }
  flush_queue(out);
}

size_t Paxos::voter_index(ParticipantId id) const {
  const auto& voters = _configuration.voters;
  const auto it = std::lower_bound(voters.begin(), voters.end(), id);
  COWORKER_ASSERT(it != voters.end());
  COWORKER_ASSERT(*it == id);
  return static_cast<size_t>(it - voters.begin());
}

}  // namespace coworker::consensus
