// Paxos: construction, dispatch, the acceptor and the learner (steps 2, 5,
// 6, 8, 10 and 11 of paxos.h). The proposer, candidate and leader are in
// paxos_leader.cc.
#include "consensus/paxos.h"

#include <algorithm>
#include <iterator>
#include <utility>

#include "consensus/overloaded.h"
#include "consensus/assert.h"

namespace coworker::consensus {

namespace {

bool sorted_unique(const std::vector<ParticipantId>& ids) {
  return std::adjacent_find(ids.begin(), ids.end(), std::greater_equal<ParticipantId>()) == ids.end();
}

}  // namespace

void Durable::apply(const PersistRecord& record) {
  std::visit(Overloaded{
                 [&](const PersistBoot& boot) {
                   COWORKER_ASSERT(boot.boots == boots + 1);
                   boots = boot.boots;
                 },
                 [&](const PersistPromise& promise) {
                   COWORKER_ASSERT(promise.ballot > promised);  // invariant 1
                   promised = promise.ballot;
                 },
                 [&](const PersistAccept& accept) {
                   // The promise is persisted first, so an accept is always at it.
                   COWORKER_ASSERT(accept.accepted.ballot == promised);  // invariant 1
                   COWORKER_ASSERT(accept.accepted.slot > snapshot.slot);
                   accepted[accept.accepted.slot] = accept.accepted;
                 },
                 [&](const PersistSnapshot& install) {
                   COWORKER_ASSERT(install.snapshot.slot > snapshot.slot);
                   snapshot = install.snapshot;
                   accepted.erase(accepted.begin(), accepted.upper_bound(snapshot.slot));
                 },
             },
             record);
}

bool Configuration::is_voter(ParticipantId id) const {
  return std::binary_search(voters.begin(), voters.end(), id);
}

bool Configuration::is_member(ParticipantId id) const {
  return is_voter(id) || std::binary_search(learners.begin(), learners.end(), id);
}

std::vector<ParticipantId> Configuration::members() const {
  std::vector<ParticipantId> all;
  all.reserve(voters.size() + learners.size());
  std::merge(voters.begin(), voters.end(), learners.begin(), learners.end(),
             std::back_inserter(all));
  return all;
}

void Configuration::check() const {
  COWORKER_ASSERT(voters.size() == 1 || voters.size() == 3 || voters.size() == 5);
  COWORKER_ASSERT(sorted_unique(voters));
  COWORKER_ASSERT(sorted_unique(learners));
  for (ParticipantId id : learners) COWORKER_ASSERT(!is_voter(id));
  COWORKER_ASSERT(!is_member(no_participant));
}

Paxos::Paxos(ParticipantId self, Configuration configuration, Timing timing, Limits limits, Prng& prng,
             const Durable& recovered)
    : _self(self), _timing(timing), _limits(limits), _prng(prng), _durable(recovered) {
  configuration.check();
  if (_durable.snapshot.slot > 0) {
    // The snapshot's schedule supersedes the initial voters.
    COWORKER_ASSERT(!_durable.snapshot.schedule.empty());
    _schedule = _durable.snapshot.schedule;
  } else {
    _schedule.emplace(1, ScheduledVoters{0, configuration.voters});
  }
  _learners = configuration.members();  // the initial voters stay members when replaced
  rebuild_members();
  COWORKER_ASSERT(is_member(_self));
  // A follower must stop honouring a silent leader's lease before it may
  // campaign, and a leader's heartbeats must come well within the lease.
  COWORKER_ASSERT(_timing.heartbeat_ticks < _timing.lease_ticks);
  COWORKER_ASSERT(_timing.lease_margin_ticks < _timing.lease_ticks);
  COWORKER_ASSERT(_timing.lease_ticks < _timing.election_timeout_ticks);
  COWORKER_ASSERT(_timing.retry_ticks > 0);
  COWORKER_ASSERT(_limits.window_slots_max > 0);
  COWORKER_ASSERT(_limits.batch_entries_max > 0);
  COWORKER_ASSERT(_limits.learn_entries_max > 0);
  COWORKER_ASSERT(_limits.forward_entries_max > 0);
  _decided_through = _durable.snapshot.slot;
  _highest_round = _durable.promised.round;
  // Accepted entries seed what this member can learn from a commit point.
  for (const auto& [slot, accepted] : _durable.accepted) {
    COWORKER_ASSERT(slot > _decided_through);
    _proposed.emplace(slot, accepted);
  }
}

Output Paxos::start() {
  COWORKER_ASSERT(!_started);
  Output out;
  _started = true;
  // Proposal ids carry the boot counter; it is durable before any proposal
  // of this boot can leave (the driver persists before it sends).
  persist(PersistBoot{_durable.boots + 1}, out);
  restart_election_timeout();
  check_invariants();
  return out;
}

Output Paxos::on_message(ParticipantId from, const Message& message) {
  COWORKER_ASSERT(_started);
  Output out;
  // Claiming to be us, or nobody, is noise. Anyone else is heard: a member
  // that lags (or restarted without its log) may not know the sender yet.
  if (from == _self || from == no_participant) return out;
  _contacts[from] = _now;
  std::visit(Overloaded{
                 [&](const Prepare& m) { on_prepare(from, m, out); },
                 [&](const Promised& m) { on_promise(from, m, out); },
                 [&](const Reject& m) { on_reject(from, m, out); },
                 [&](const Accept& m) { on_accept(from, m, out); },
                 [&](const Accepted& m) { on_accepted(from, m, out); },
                 [&](const Heartbeat& m) { on_heartbeat(from, m, out); },
                 [&](const HeartbeatAck& m) { on_heartbeat_ack(from, m, out); },
                 [&](const CatchUp& m) { on_catch_up(from, m, out); },
                 [&](const Learn& m) { on_learn(from, m, out); },
                 [&](const Forward& m) { on_forward(from, m, out); },
                 [&](const Forwarded& m) { on_forwarded(from, m, out); },
             },
             message);
  check_invariants();
  return out;
}

Output Paxos::on_tick() {
  COWORKER_ASSERT(_started);
  Output out;
  _now++;
  _election_timeout.tick();
  _heartbeat_timeout.tick();
  _retry_timeout.tick();
  _catch_up_timeout.tick();
  _forward_timeout.tick();
  switch (_status) {
    case Status::follower:
      if (_election_timeout.fired()) {
        if (electable()) {
          start_election(out);
        } else {
          _election_timeout.stop();
        }
      }
      break;
    case Status::candidate:
      tick_candidate(out);
      break;
    case Status::leader:
      tick_leader(out);
      break;
  }
  tick_learner(out);
  check_invariants();
  return out;
}

Output Paxos::compact(Snapshot snapshot) {
  COWORKER_ASSERT(_started);
  COWORKER_ASSERT(snapshot.slot > _durable.snapshot.slot);
  COWORKER_ASSERT(snapshot.slot <= _decided_through);
  Output out;
  const Slot slot = snapshot.slot;
  snapshot.schedule = schedule_at(slot);
  persist(PersistSnapshot{std::move(snapshot)}, out);
  prune_schedule();
  // Keep a tail of decided entries below the snapshot to serve small lags
  // without shipping the snapshot.
  const Slot keep_from = slot > _limits.retain_slots ? slot - _limits.retain_slots + 1 : 1;
  while (!_log.empty() && _log.begin()->first < keep_from) {
    const auto it = _log.begin();
    if (!it->second.noop()) _decided_ids.erase(it->second.id);
    _log.erase(it);
  }
  check_invariants();
  return out;
}

// ---- Acceptor ----

// Step 2's lease rule: while it binds, this voter promises nobody new.
bool Paxos::lease_binds(const Ballot& ballot) const {
  // Boot grace: before a crash we may have acked a leader whose lease is
  // still running; we no longer remember when.
  if (_now < _timing.lease_ticks) return true;
  // Step 2: every leader we heard lately binds us, not only the one we
  // follow now (a higher ballot we follow may not have covered the
  // configuration the other's lease counts).
  for (const auto& [node, heard] : _bound) {
    if (node != ballot.node && _now < heard + _timing.lease_ticks) return true;
  }
  return false;
}

void Paxos::bind_to(ParticipantId leader) {
  for (auto it = _bound.begin(); it != _bound.end();) {
    it = it->second + _timing.lease_ticks <= _now ? _bound.erase(it) : std::next(it);
  }
  _bound[leader] = _now;
}

void Paxos::on_prepare(ParticipantId from, const Prepare& prepare, Output& out) {
  // Any member answers: the candidate counts only the voters of each
  // configuration (step 13), and a promise binds nobody else.
  if (prepare.ballot.node != from) return;
  const Ballot promised = _durable.promised;
  // Answering a duplicate of the Prepare we promised is always safe.
  if (prepare.ballot < promised || (prepare.ballot != promised && lease_binds(prepare.ballot))) {
    send(from, Reject{prepare.ballot, promised, leader()}, out);
    return;
  }
  _highest_round = std::max(_highest_round, prepare.ballot.round);
  if (prepare.ballot > promised) {
    persist(PersistPromise{prepare.ballot}, out);
    // A candidate or leader below the new promise can no longer win.
    if (_status != Status::follower && _ballot < prepare.ballot) step_down();
    if (_status == Status::follower) restart_election_timeout();
  }
  COWORKER_ASSERT(_durable.promised == prepare.ballot);
  Promised promise{prepare.ballot, prepare.from, _durable.snapshot.slot, {}};
  for (auto it = _durable.accepted.lower_bound(prepare.from); it != _durable.accepted.end(); ++it) {
    COWORKER_ASSERT(it->second.ballot < prepare.ballot || it->second.ballot == prepare.ballot);
    promise.accepted.push_back(it->second);
  }
  send(from, std::move(promise), out);
}

// Accept and Heartbeat come only from the node that owns the ballot. (It may
// lead a configuration this member does not know of yet.)
bool Paxos::ignore_from_leader(ParticipantId from, const Ballot& ballot) const {
  return ballot.node != from;
}

void Paxos::on_accept(ParticipantId from, const Accept& accept, Output& out) {
  if (ignore_from_leader(from, accept.ballot)) return;
  const bool voter = voter_anywhere();
  if (voter && accept.ballot < _durable.promised) {
    send(from, Reject{accept.ballot, _durable.promised, leader()}, out);
    return;
  }
  if (!voter && ignore_lower_leader(accept.ballot)) return;
  observe_leader(accept.ballot, out);
  COWORKER_ASSERT(_status == Status::follower);  // a leader above us, or we rejected it
  if (voter && accept.ballot > _durable.promised) persist(PersistPromise{accept.ballot}, out);
  Accepted accepted{accept.ballot, {}};
  bool refused = false;
  for (const SlotEntry& proposed : accept.entries) {
    // Step 12: only the voters of a slot vote on it (or a member that cannot
    // tell yet whether it is one).
    if (!accepts_slot(proposed.slot)) continue;
    if (accept.ballot < _durable.promised) {
      // Only a learner of everything ahead gets here (a voter rejected the
      // message above). A slot we decided and still hold is acked without
      // storing when the Accept carries exactly its decided entry (a leader
      // of a later configuration may need our vote to finish it; acking the
      // chosen value cannot choose another). Anything else is refused: below
      // our promise, a stale leader may carry any value.
      const auto decided = _log.find(proposed.slot);
      if (proposed.slot <= _decided_through && decided != _log.end() &&
          decided->second == proposed.entry) {
        accepted.slots.push_back(proposed.slot);
      } else {
        refused = true;
      }
      continue;
    }
    if (accept.ballot > _durable.promised) persist(PersistPromise{accept.ballot}, out);
    COWORKER_ASSERT(_durable.promised == accept.ballot);
    // A compacted slot is decided, and any proposal that passes the promise
    // check carries its decided entry (a majority promised above every
    // ballot that could have chosen another): acking it is safe.
    if (proposed.slot > _durable.snapshot.slot) {
      const auto it = _durable.accepted.find(proposed.slot);
      if (it == _durable.accepted.end() || it->second.ballot != accept.ballot) {
        persist(PersistAccept{AcceptedEntry{proposed.slot, accept.ballot, proposed.entry}}, out);
      } else {
        COWORKER_ASSERT(it->second.entry == proposed.entry);  // invariant 2
      }
    }
    accepted.slots.push_back(proposed.slot);
  }
  if (refused) send(from, Reject{accept.ballot, _durable.promised, leader()}, out);
  if (voter || !accepted.slots.empty()) send(from, std::move(accepted), out);
  for (const SlotEntry& proposed : accept.entries) {
    if (proposed.slot <= _decided_through) continue;
    auto [it, fresh] = _proposed.try_emplace(proposed.slot);
    if (fresh || it->second.ballot <= accept.ballot) {
      it->second = AcceptedEntry{proposed.slot, accept.ballot, proposed.entry};
    }
  }
  follow_commit(accept.ballot, accept.decided_through, out);
}

void Paxos::on_heartbeat(ParticipantId from, const Heartbeat& heartbeat, Output& out) {
  if (ignore_from_leader(from, heartbeat.ballot)) return;
  // Whoever promised a higher ballot never acks a lower one, voter or not:
  // a member that lags may not know it votes, and its ack counts towards
  // the lease (step 14).
  if (heartbeat.ballot < _durable.promised) {
    send(from, Reject{heartbeat.ballot, _durable.promised, leader()}, out);
    return;
  }
  if (!voter_anywhere() && ignore_lower_leader(heartbeat.ballot)) return;
  observe_leader(heartbeat.ballot, out);
  COWORKER_ASSERT(_status == Status::follower);
  COWORKER_ASSERT(heartbeat.ballot <= _leader_ballot);
  follow_commit(heartbeat.ballot, heartbeat.decided_through, out);
  // The ack counts towards that leader's lease: it binds us from now, even
  // if we follow a higher ballot (step 2).
  bind_to(heartbeat.ballot.node);
  send(from, HeartbeatAck{heartbeat.ballot, heartbeat.sent, _decided_through}, out);
}

// Contact from the leader of `ballot` (already checked against the promise).
void Paxos::observe_leader(const Ballot& ballot, Output& out) {
  COWORKER_ASSERT(ballot.node != _self);
  _highest_round = std::max(_highest_round, ballot.round);
  // A live leader ends a candidacy (the candidate has not promised itself
  // above it, or the message would have been rejected), and a higher one ends
  // a leadership.
  if (_status == Status::candidate) step_down();
  if (_status == Status::leader && ballot > _ballot) step_down();
  if (_status == Status::leader) return;
  if (ignore_lower_leader(ballot)) return;  // an older leader, still honest
  const bool changed = !_leader_heard || ballot != _leader_ballot;
  _leader_ballot = ballot;
  _leader_heard = true;
  _leader_contact = _now;
  bind_to(ballot.node);
  restart_election_timeout();
  if (changed) forward_own(out);
}

// Step 6 on a follower: decide what leader `ballot` proposed and committed.
void Paxos::follow_commit(const Ballot& ballot, Slot commit, Output& out) {
  if (_status == Status::leader || ballot != _leader_ballot) return;
  _commit_seen = std::max(_commit_seen, commit);
  while (_decided_through < commit) {
    const auto it = _proposed.find(_decided_through + 1);
    if (it == _proposed.end() || it->second.ballot != ballot) break;
    Entry entry = std::move(it->second.entry);
    _proposed.erase(it);
    decide(_decided_through + 1, std::move(entry), {}, out);
  }
  if (_decided_through < _commit_seen && !_catch_up_timeout.running()) {
    request_catch_up(ballot.node, out);
  }
}

// ---- Learner ----

void Paxos::decide(Slot slot, Entry entry, std::vector<ParticipantId> quorum, Output& out) {
  COWORKER_ASSERT(slot == _decided_through + 1);  // invariant 4
  COWORKER_ASSERT(!out.installed || out.installed->slot < slot);
  if (!quorum.empty()) {
    // Step 12: a majority of the slot's own voters.
    const auto& voters = voters_for(slot);
    size_t count = 0;
    for (ParticipantId id : quorum) count += contains(voters, id) ? 1 : 0;
    COWORKER_ASSERT(count >= majority_of(voters));
  }
  _decided_through = slot;
  _proposed.erase(slot);
  if (entry.reconfigures()) schedule_decided(slot, entry);
  // A configuration starts or stops governing at slot + 1: our role may change.
  if (entry.reconfigures() || _schedule.count(slot + 1) != 0) refresh_role();
  if (!entry.noop()) {
    _decided_ids[entry.id] = slot;
    if (entry.id.proposer == _self && entry.id.boot == _durable.boots) {
      _own.erase(entry.id.sequence);
      _leader_only.erase(entry.id.sequence);
    }
  }
  if (!out.decided.empty()) COWORKER_ASSERT(out.decided.back().slot + 1 == slot);
  out.decided.push_back(Decided{slot, entry, std::move(quorum)});
  _log.emplace_hint(_log.end(), slot, std::move(entry));
}

void Paxos::install(const Snapshot& snapshot, Output& out) {
  COWORKER_ASSERT(snapshot.slot > _decided_through);
  COWORKER_ASSERT(!out.installed);
  COWORKER_ASSERT(out.decided.empty());  // installed comes before decided
  COWORKER_ASSERT(!snapshot.schedule.empty());
  persist(PersistSnapshot{snapshot}, out);
  _decided_through = snapshot.slot;
  _schedule = snapshot.schedule;
  rebuild_members();
  refresh_role();
  _log.clear();
  _decided_ids.clear();
  _proposed.erase(_proposed.begin(), _proposed.upper_bound(snapshot.slot));
  out.installed = snapshot;
  _stats.snapshots_installed++;
}

void Paxos::on_catch_up(ParticipantId from, const CatchUp& catch_up, Output& out) {
  if (catch_up.from == 0 || catch_up.from > _decided_through) return;
  const Slot log_start = _log.empty() ? _decided_through + 1 : _log.begin()->first;
  Learn learn;
  learn.first = catch_up.from;
  if (learn.first < log_start) {
    // The entries are compacted away; the snapshot covers them (the log
    // starts at most one past the snapshot: invariant 4).
    COWORKER_ASSERT(_durable.snapshot.slot + 1 >= log_start);
    COWORKER_ASSERT(_durable.snapshot.slot >= learn.first);
    learn.snapshot = _durable.snapshot;
    learn.first = _durable.snapshot.slot + 1;
  }
  for (Slot slot = learn.first;
       slot <= _decided_through && learn.entries.size() < _limits.learn_entries_max; slot++) {
    learn.entries.push_back(_log.at(slot));
  }
  COWORKER_ASSERT(learn.first <= _decided_through + 1);
  COWORKER_ASSERT(learn.snapshot.slot == 0 || learn.snapshot.slot + 1 == learn.first);
  send(from, std::move(learn), out);
}

void Paxos::on_learn(ParticipantId from, const Learn& learn, Output& out) {
  // Invariant 5: a leader decides only through its own ballot.
  if (_status == Status::leader) return;
  const Slot before = _decided_through;
  if (learn.snapshot.slot > _decided_through) install(learn.snapshot, out);
  for (size_t i = 0; i < learn.entries.size(); i++) {
    const Slot slot = learn.first + i;
    if (slot <= _decided_through) continue;
    if (slot != _decided_through + 1) break;
    decide(slot, learn.entries[i], {}, out);
  }
  COWORKER_ASSERT(_decided_through >= before);
  COWORKER_ASSERT(_decided_through >= learn.snapshot.slot);
  if (_status == Status::candidate) {
    if (leaderless() && _decided_through > before && !_phase1_done) request_catch_up(from, out);
    try_finish_phase1(out);
    return;
  }
  // Keep pulling while the followed leader's commit point is ahead, but only
  // on progress: a duplicated or stale Learn must not start a second chain
  // of requests (each would double on every duplication).
  if ((_decided_through < _commit_seen || leaderless()) && _decided_through > before) {
    request_catch_up(from, out);
  } else if (_decided_through >= _commit_seen) {
    _catch_up_timeout.stop();
  }
}

void Paxos::request_catch_up(ParticipantId target, Output& out) {
  if (target == no_participant || target == _self) return;
  _catch_up_target = target;
  send(target, CatchUp{_decided_through + 1}, out);
  _catch_up_timeout.start(_timing.retry_ticks);
}

void Paxos::tick_learner(Output& out) {
  if (_catch_up_timeout.fired()) {
    _catch_up_timeout.stop();
    if (_status == Status::follower && _decided_through < _commit_seen && !leaderless()) {
      request_catch_up(leader(), out);
    } else if (_status == Status::candidate && _phase1_done) {
      request_catch_up(_catch_up_target, out);
    }
  }
  if (_status != Status::leader && !_phase1_done && leaderless() &&
      !_catch_up_timeout.running()) {
    probe(out);
  }
  if (_forward_timeout.fired()) {
    _forward_timeout.stop();
    forward_own(out);
  }
}

// ---- Output helpers ----

void Paxos::persist(PersistRecord record, Output& out) {
  _durable.apply(record);
  out.persist.push_back(std::move(record));
}

void Paxos::send(ParticipantId to, Message message, Output& out) {
  COWORKER_ASSERT(to != _self);
  COWORKER_ASSERT(to != no_participant);
  out.send.push_back(Send{to, std::move(message)});
}

ParticipantId Paxos::leader() const {
  if (leading()) return _self;
  if (!_leader_heard || _leader_ballot.node == _self) return no_participant;
  if (!is_member(_leader_ballot.node)) return no_participant;  // it left meanwhile
  return _leader_ballot.node;
}

// A learner follows the highest ballot it heard — but ballots order leaders
// only within a configuration: a later configuration may be led by a lower
// ballot that never met the higher one (its voters never promised it). Any
// leader's commit point is safe to follow (it decides only by its own
// quorums), so once the followed leader has been silent for an election
// timeout, a lower ballot is followed too.
bool Paxos::ignore_lower_leader(const Ballot& ballot) const {
  return _leader_heard && ballot < _leader_ballot && !leaderless();
}

// Nobody leads (as far as we know): a member that lost its decided entries
// in a crash may be the voter who must elect and not know it, or a member
// that no longer knows who the others are. Ask the members and whoever we
// heard from lately, in turn, for what they decided.
void Paxos::probe(Output& out) {
  std::vector<ParticipantId> targets = _members;
  for (auto it = _contacts.begin(); it != _contacts.end();) {
    if (it->second + contacts_ticks() < _now) {
      it = _contacts.erase(it);
      continue;
    }
    targets.push_back(it->first);
    ++it;
  }
  std::sort(targets.begin(), targets.end());
  targets.erase(std::unique(targets.begin(), targets.end()), targets.end());
  targets.erase(std::remove(targets.begin(), targets.end(), _self), targets.end());
  if (targets.empty()) return;
  _probe = (_probe + 1) % targets.size();
  request_catch_up(targets[_probe], out);
}

bool Paxos::leaderless() const {
  if (_now < _timing.election_timeout_ticks) return false;
  return !_leader_heard || _now >= _leader_contact + _timing.election_timeout_ticks;
}

const Paxos::PeerProgress* Paxos::peer(ParticipantId id) const {
  const auto it = _peers.find(id);
  return it == _peers.end() ? nullptr : &it->second;
}

void Paxos::check_invariants() const {
  COWORKER_ASSERT(_decided_through >= _durable.snapshot.slot);
  if (!_log.empty()) {
    // Invariant 4: the log is (log start, decided_through], contiguous, and
    // starts no later than one past the snapshot.
    COWORKER_ASSERT(_log.rbegin()->first == _decided_through);
    COWORKER_ASSERT(_log.begin()->first <= _durable.snapshot.slot + 1);
    COWORKER_ASSERT(_log.size() == _decided_through - _log.begin()->first + 1);
  }
  if (!_durable.accepted.empty()) {
    COWORKER_ASSERT(_durable.accepted.begin()->first > _durable.snapshot.slot);
  }
  if (!_proposed.empty()) COWORKER_ASSERT(_proposed.begin()->first > _decided_through);
  COWORKER_ASSERT(_own.size() <= _limits.proposals_max);
  COWORKER_ASSERT(!_schedule.empty());
  COWORKER_ASSERT(_schedule.begin()->first <= _durable.snapshot.slot + 1);
  if (_status != Status::follower) {
    COWORKER_ASSERT(_ballot.node == _self);
    COWORKER_ASSERT(!_paused);
  }
  if (_status == Status::leader) {
    COWORKER_ASSERT(_durable.promised == _ballot);  // nobody outbid us unnoticed
    COWORKER_ASSERT(_next_slot > _decided_through);
    // Invariant 7, and the instances are exactly the slots in flight.
    COWORKER_ASSERT(_next_slot <= _decided_through + _limits.window_slots_max + 1);
    // Step 12: our own vote is in every slot we are a voter of.
    for (const auto& [slot, instance] : _instances) {
      COWORKER_ASSERT(contains(instance.accepted, _self) == contains(voters_for(slot), _self));
    }
    COWORKER_ASSERT(_instances.size() == _next_slot - _decided_through - 1);
    COWORKER_ASSERT(_queue.size() <= _limits.queue_max);
    // Step 14: a lease only over configurations that promised our ballot.
    if (holds_lease()) {
      for (const std::vector<ParticipantId>* voters : lease_configurations()) {
        COWORKER_ASSERT(promised_majority(*voters, false));
      }
    }
  } else {
    COWORKER_ASSERT(_instances.empty());
    COWORKER_ASSERT(_queue.empty());
  }
}

}  // namespace coworker::consensus
