// MembershipNode: identity, the calls, applying the log, the member side of
// heartbeats and read leases (rule 2). Arrival and own departure (rules 1
// and 5) are in membership_arrival.cc, the leader's side in
// membership_leader.cc.
#include "consensus/membership_node.h"

#include <algorithm>
#include <utility>

#include "consensus/overloaded.h"
#include "consensus/assert.h"

namespace coworker::consensus {

void MembershipDurable::apply(const MembershipRecord& record) {
  std::visit(Overloaded{
                 [&](const PersistRecord& paxos_record) { paxos.apply(paxos_record); },
                 [&](const Identity& next) {
                   COWORKER_ASSERT(next.data_dir != 0);
                   COWORKER_ASSERT(next.incarnation >= identity.incarnation);
                   // A new id is a new acceptor: nothing of the old one counts.
                   if (next.id != identity.id) paxos = Durable{};
                   identity = next;
                 },
             },
             record);
}

MembershipNode::MembershipNode(const MembershipConfig& config, Prng& prng,
                               const MembershipDurable& recovered,
                               MembershipApplication& application)
    : _config(config),
      _prng(prng),
      _application(application),
      _identity(recovered.identity),
      _boot_paxos(recovered.paxos) {
  if (_identity.data_dir == 0) _identity.data_dir = config.data_dir;
  COWORKER_ASSERT(_identity.data_dir != 0);
  COWORKER_ASSERT(config.timing.heartbeat_ticks < config.timing.lease_ticks);
  // Silence for a departure timeout must also be a lease plus margin
  // without acks.
  COWORKER_ASSERT(config.timing.lease_ticks + config.timing.margin_ticks <=
                  config.timing.departure_ticks);
  if (_identity.id == no_participant) COWORKER_ASSERT(_boot_paxos.snapshot.slot == 0);
}

MembershipNode::~MembershipNode() = default;

Paxos& MembershipNode::paxos() {
  COWORKER_ASSERT(_paxos != nullptr);
  return *_paxos;
}

const Paxos& MembershipNode::paxos() const {
  COWORKER_ASSERT(_paxos != nullptr);
  return *_paxos;
}

MembershipOutput MembershipNode::finish(MembershipOutput out) {
  note_leadership();  // a proposal may have handed the leadership over
  out.generation = _generation;
  out.from = id();
  check_invariants();
  return out;
}

MembershipOutput MembershipNode::start() {
  COWORKER_ASSERT(!_started);
  _started = true;
  MembershipOutput out;
  if (_identity.id != no_participant) {
    start_paxos(_identity.id, _boot_paxos, out);  // still a member, as far as we know
  } else if (_config.bootstrap && _identity.incarnation == 0) {
    // The first participant of a cluster is id 1: slot 1 is its arrival.
    persist_identity(Identity{_identity.data_dir, 1, 1, false, {}, 0}, out);
    start_paxos(1, Durable{}, out);
  } else {
    // Departed before this boot: what we knew of the members then is where
    // to ask (kept in the identity record; a snapshot of an id we still
    // held is checksummed on disk, and one that does not decode leaves
    // `join` only).
    _remembered = _identity.remembered;
    _remembered_cluster = _identity.remembered_cluster;
    if (_remembered.empty() && !_boot_paxos.snapshot.bytes.empty()) {
      Reader reader(_boot_paxos.snapshot.bytes);
      if (std::optional<MembershipState> state = MembershipState::decode(reader)) {
        remember_members(*state);
      }
    }
    start_arrival(out, false, 0);
  }
  _boot_paxos = Durable{};
  return finish(std::move(out));
}

// A Paxos for `id` from its durable state; the membership state from the
// durable snapshot (the log after it comes back through Paxos).
void MembershipNode::start_paxos(ParticipantId id, const Durable& durable, MembershipOutput& out) {
  COWORKER_ASSERT(id != no_participant);
  Configuration configuration;
  configuration.voters = {1};  // slot 1's arrival; a snapshot's schedule supersedes it
  if (id != 1) configuration.learners = {id};
  // A new leader waits the old read leases out before it decides what it
  // recovered (a departure the old leader proposed, say): DESIGN §3.
  Paxos::Timing timing = _config.paxos_timing;
  // The Paxos lease gates every ack we grant: the same drift allowance.
  timing.lease_margin_ticks = std::max(timing.lease_margin_ticks, _config.timing.margin_ticks);
  timing.recovered_hold_ticks = std::max(timing.recovered_hold_ticks,
                                         _config.timing.lease_ticks + _config.timing.margin_ticks);
  _paxos = std::make_unique<Paxos>(id, configuration, timing, _config.paxos_limits, _prng, durable);
  _generation++;
  _state = MembershipState{};
  if (durable.snapshot.slot > 0) install(durable.snapshot);
  _recovering = true;
  _caught_up_known = false;
  _lease_until = 0;
  _pending_acks.clear();
  _heartbeat_due = _now;
  _leading = false;
  _peers.clear();
  _bootstrap_proposed = false;
  _confirmed.clear();
  _vote_until = 0;
  _retire_after = 0;
  merge(_paxos->start(), out);
  maybe_bootstrap(out);
}

void MembershipNode::install(const Snapshot& snapshot) {
  Reader reader(snapshot.bytes);
  std::optional<MembershipState> state = MembershipState::decode(reader);
  // Snapshots come from our own compaction or a member's, checksummed on
  // disk and wire: an undecodable one is a bug.
  COWORKER_ASSERT(state.has_value());
  COWORKER_ASSERT(state->applied() == snapshot.slot);
  COWORKER_ASSERT(_application.decode(reader));
  COWORKER_ASSERT(reader.done());
  _state = std::move(*state);
  std::vector<ParticipantId> members = _state.ids();
  if (!_state.is_member(id())) {
    members.insert(std::lower_bound(members.begin(), members.end(), id()), id());
  }
  _paxos->set_members(std::move(members));
}

void MembershipNode::maybe_bootstrap(MembershipOutput& out) {
  if (!_config.bootstrap || id() != 1 || _state.bootstrapped() || _bootstrap_proposed) return;
  _bootstrap_proposed = true;
  propose_entry(Arrive{_config.address, nonce(), _config.params}, Paxos::Forwarding::yes, out);
}

// ---- Calls ----

MembershipOutput MembershipNode::on_message(ParticipantId from, ParticipantId to,
                                            const std::string& address,
                                            const MembershipMessage& message) {
  COWORKER_ASSERT(_started);
  MembershipOutput out;
  if (_exited || _refused) return finish(std::move(out));
  if (from != no_participant && !address.empty()) _addresses[from] = address;
  if (const auto* answer = std::get_if<ArriveAnswer>(&message)) {
    on_arrive_answer(*answer, out);
    return finish(std::move(out));
  }
  if (const auto* request = std::get_if<ArriveRequest>(&message)) {
    if (_paxos != nullptr) on_arrive_request(from, address, *request, out);
    return finish(std::move(out));
  }
  // For an id this participant does not have (any more): stale, except a
  // heartbeat, which whoever is here answers — one for "whoever is here"
  // (to 0), and one for an id we no longer have: its sender may have
  // restarted from a state older than our new id and its own departure, and
  // asks the ids it knows; a member that knows it departed must say so, or
  // it never learns (seed 2652679960 of member-voters: the bootstrapper,
  // without join addresses, heartbeat a re-arrived member's old id forever).
  const bool anyone = to != id() && std::holds_alternative<MemberHeartbeat>(message);
  if (_paxos == nullptr || (to != id() && !anyone)) return finish(std::move(out));
  std::visit(Overloaded{
                 [&](const Message& paxos_message) {
                   merge(_paxos->on_message(from, paxos_message), out);
                   note_leadership();
                 },
                 [&](const MemberHeartbeat& heartbeat) { on_member_heartbeat(from, heartbeat, out); },
                 [&](const MemberAck& ack) { on_member_ack(from, ack, out); },
                 [&](const SilentReport& report) { on_silent_report(report.replica); },
                 [&](const auto&) {},
             },
             message);
  return finish(std::move(out));
}

MembershipOutput MembershipNode::on_tick() {
  COWORKER_ASSERT(_started);
  MembershipOutput out;
  _now++;
  if (_exited || _refused) return finish(std::move(out));
  if (_paxos == nullptr) {
    tick_arrival(out);
    return finish(std::move(out));
  }
  merge(_paxos->on_tick(), out);
  note_leadership();
  if (_retiring) {
    // A retiring leader leads like any other (it may be needed: the other
    // voters in force may be dead or gone) until the reconfiguration that
    // replaces it takes effect and it hands over (paxos.h step 15).
    if (_leading) tick_leader(out);
    if (retired()) {
      depart_self(out);
    } else if (_now >= _heartbeat_due) {
      // Ask the voters in force how far their snapshots reach (MemberAck
      // {gone}); what we know of them may be stale, so anyone now and then.
      _heartbeat_due = _now + _config.timing.heartbeat_ticks;
      const std::vector<ParticipantId>& voters = _paxos->voters_for(_paxos->decided_through() + 1);
      const ParticipantId to = voters[_prng.below(voters.size())];
      const MemberHeartbeat heartbeat{_now, _state.applied(), false, _paxos->boot()};
      if (to != id() && _prng.chance(1, 2)) {
        send(to, heartbeat, out);
      } else {
        ask_anyone(heartbeat, out);
      }
    }
    return finish(std::move(out));
  }
  maybe_bootstrap(out);
  if (_now >= _heartbeat_due) {
    _heartbeat_due = _now + _config.timing.heartbeat_ticks;
    if (!_stuck) send_heartbeat(out);
  }
  if (_leading) tick_leader(out);
  return finish(std::move(out));
}

MembershipOutput MembershipNode::propose(const MembershipEntry& entry) {
  MembershipOutput out;
  if (_paxos != nullptr) propose_entry(entry, Paxos::Forwarding::yes, out);
  return finish(std::move(out));
}

MembershipOutput MembershipNode::leave() {
  MembershipOutput out;
  if (_paxos == nullptr || !_state.is_member(id())) return finish(std::move(out));
  _left = true;
  propose_entry(Leave{id()}, Paxos::Forwarding::yes, out);
  return finish(std::move(out));
}

MembershipOutput MembershipNode::report_silent(ParticipantId replica) {
  MembershipOutput out;
  if (_paxos == nullptr) return finish(std::move(out));
  if (_leading) {
    on_silent_report(replica);
  } else if (_paxos->leader() != no_participant) {
    send(_paxos->leader(), SilentReport{replica}, out);
  }
  return finish(std::move(out));
}

MembershipOutput MembershipNode::set_stuck(bool stuck) {
  MembershipOutput out;
  _stuck = stuck;
  if (_paxos != nullptr) {
    _paxos->pause(stuck);
    out.withdrawn = _paxos->take_withdrawn();
    note_leadership();
  }
  return finish(std::move(out));
}

// ---- Applying the log ----

MembershipOutput MembershipNode::apply(const MembershipOutput& released) {
  MembershipOutput out;
  // Outputs of a Paxos this participant dropped (it departed since) are the
  // old id's; the new one learns the log afresh.
  if (_paxos == nullptr || released.generation != _generation) return finish(std::move(out));
  if (released.installed && released.installed->slot > _state.applied()) {
    install(*released.installed);
    // A snapshot may be where we learn our own departure: retire before
    // any ack counted at its slot becomes a lease (seed 62077 of
    // member-churn: a restarted participant held a read lease after
    // installing the snapshot that departed it).
    if (!_retiring && _state.gone(id())) retire(out);
  }
  for (const Decided& decided : released.decided) {
    if (decided.slot <= _state.applied()) continue;
    COWORKER_ASSERT(decided.slot == _state.applied() + 1);
    const Effect effect = _state.apply(decided.slot, decided.entry, _application);
    _application.apply(decided.slot, effect, _state);
    react(decided.slot, effect, out);
    settle_removal(decided.entry.id);
    if (!_retiring && _state.gone(id())) retire(out);
  }
  after_apply(out);
  if (_retiring && retired()) depart_self(out);
  return finish(std::move(out));
}

void MembershipNode::react(Slot slot, const Effect& effect, MembershipOutput& out) {
  switch (effect.kind) {
    case Effect::Kind::arrived:
    case Effect::Kind::retried:
    case Effect::Kind::refused: {
      const auto request = _requests.find(effect.nonce);
      if (request == _requests.end()) break;
      if (effect.kind == Effect::Kind::refused) {
        ArriveAnswer refusal{effect.nonce, no_participant, {}, effect.reason, false, 0};
        out.send.push_back(MembershipSend{no_participant, request->second, std::move(refusal)});
      } else {
        answer_arrival(effect.nonce, request->second, out);
      }
      _requests.erase(request);
      break;
    }
    case Effect::Kind::leaving:
      if (effect.id == id()) _left = true;
      break;
    case Effect::Kind::departed:
      _peers.erase(effect.id);
      break;
    case Effect::Kind::unreachable:
    case Effect::Kind::returned: {
      Peer& peer = _peers[effect.id];
      peer.return_proposed = false;
      if (effect.kind == Effect::Kind::unreachable) peer.marked_at = slot;
      // Acks may come back, unless a removal of ours is still undecided
      // (settle_removal ends that withholding).
      if (!peer.removal) peer.withhold = false;
      break;
    }
    case Effect::Kind::reconfigured:
      _reconfiguration_pending = false;
      break;
    case Effect::Kind::nothing:
    case Effect::Kind::undecodable:
    case Effect::Kind::acks:
      break;
  }
  COWORKER_ASSERT(_state.applied() == slot);
}

// Our removal of a member is decided: it departed (its peer is gone), was
// marked unreachable, or changed nothing (marked already, by an earlier
// leadership). Only now may it have acks again. Seen only through
// `released.decided`: a leader applies what it decides itself; should it
// ever install a snapshot past the removal's slot instead, the member stays
// withheld until this leadership ends (note_leadership clears the peers) —
// the safe side.
void MembershipNode::settle_removal(const ProposalId& decided) {
  for (auto& [member, peer] : _peers) {
    if (peer.removal != decided) continue;
    COWORKER_ASSERT(peer.withhold);
    peer.removal.reset();
    peer.withhold = false;
    return;
  }
}

void MembershipNode::after_apply(MembershipOutput& out) {
  note_votes();
  std::vector<ParticipantId> members = _state.ids();
  if (!_state.is_member(id())) {
    members.insert(std::lower_bound(members.begin(), members.end(), id()), id());
  }
  if (members != _paxos->members()) _paxos->set_members(std::move(members));
  promote_acks();
  // Compact every snapshot_interval slots, and whenever a configuration
  // comes into force: then what the voters it replaces decided is durable
  // here (they may depart and forget it, rule 5).
  const Slot interval = _config.timing.snapshot_interval;
  const Slot applied = _state.applied();
  const Slot compacted = _paxos->compacted_through();
  if (applied > compacted) {
    const Slot in_force = _paxos->configuration_start(applied + 1);
    const bool boundary = in_force > 1 && compacted + 1 < in_force;
    if (boundary || (interval > 0 && applied >= compacted + interval)) {
      merge(_paxos->compact(snapshot_now()), out);
    }
  }
  if (_leading) maybe_reconfigure(out);
  maybe_bootstrap(out);
}

// ---- Member side of heartbeats (rule 2) ----

void MembershipNode::send_heartbeat(MembershipOutput& out) {
  const ParticipantId leader = _paxos->leader();
  const MemberHeartbeat heartbeat{_now, _state.applied(), recovering(), _paxos->boot()};
  if (leader == id()) {
    on_member_heartbeat(id(), heartbeat, out);
  } else if (leader != no_participant && !_paxos->leaderless()) {
    send(leader, heartbeat, out);
  } else {
    // No leader heard lately (a restart, a long partition): ask anyone; a
    // member that knows we departed says so (a leader does not heartbeat
    // ids it no longer counts as members, and ours may be gone).
    ask_anyone(heartbeat, out);
  }
}

void MembershipNode::on_member_ack(ParticipantId from, const MemberAck& ack,
                                   MembershipOutput& out) {
  if (ack.gone) {
    Slot& confirmed = _confirmed[from];
    confirmed = std::max(confirmed, ack.compacted);
    _retire_after = std::max(_retire_after, ack.slot);
    // It decided more than we did: learn from it (we may have no one else).
    if (from != no_participant && ack.slot > _paxos->decided_through()) _paxos->hear_of(from);
  }
  if (_retiring) return;
  // A leader behind us may not know yet that we are gone; we do (a restart
  // from a snapshot that departed us): no lease from its ack.
  if (ack.gone || _state.gone(id())) {
    retire(out);
    if (retired()) depart_self(out);
    return;
  }
  // Rule 2 (f): only an ack of a heartbeat of this boot. Ticks start again
  // at every boot, so an ack of an earlier boot's heartbeat (delayed, or
  // resent) carries a `sent` this boot may also have sent, and would stretch
  // a lease the leader had let run out (seed 33561683 of member-churn).
  if (ack.boot != _paxos->boot() || ack.sent > _now) return;
  const Tick until = ack.sent + _config.timing.lease_ticks;
  if (ack.slot <= _state.applied()) {
    _lease_until = std::max(_lease_until, until);
  } else {
    Tick& pending = _pending_acks[ack.slot];
    pending = std::max(pending, until);
  }
  if (!_caught_up_known) {
    _caught_up_known = true;
    _caught_up_at = ack.slot;
  }
  promote_acks();
}

// A heartbeat to a member we know of, or (half the time, and always when we
// know none) to a join address for whoever is there now: what we know may
// be stale, the ids it names gone.
void MembershipNode::ask_anyone(const MemberHeartbeat& heartbeat, MembershipOutput& out) {
  std::vector<ParticipantId> members = _state.ids();
  members.erase(std::remove(members.begin(), members.end(), id()), members.end());
  if (!members.empty() && (_config.join.empty() || _prng.chance(1, 2))) {
    send(members[_prng.below(members.size())], heartbeat, out);
  } else if (!_config.join.empty()) {
    const std::string& address = _config.join[_prng.below(_config.join.size())];
    out.send.push_back(MembershipSend{no_participant, address, heartbeat});
  }
}

// Acks whose slot we have applied now count.
void MembershipNode::promote_acks() {
  while (!_pending_acks.empty() && _pending_acks.begin()->first <= _state.applied()) {
    _lease_until = std::max(_lease_until, _pending_acks.begin()->second);
    _pending_acks.erase(_pending_acks.begin());
  }
  // Ones that would have run out already are of no use.
  for (auto it = _pending_acks.begin(); it != _pending_acks.end();) {
    it = it->second <= _now ? _pending_acks.erase(it) : std::next(it);
  }
  if (_recovering && _caught_up_known && _state.applied() >= _caught_up_at) _recovering = false;
}

bool MembershipNode::holds_read_lease() const {
  return _paxos != nullptr && !_stuck && _now < _lease_until;
}

bool MembershipNode::unreachable() const {
  const Member* self = _state.member(id());
  return self != nullptr && self->status == MemberStatus::unreachable;
}

bool MembershipNode::leaving() const {
  const Member* self = _state.member(id());
  return self != nullptr && self->status == MemberStatus::leaving;
}

// ---- Output helpers ----

Snapshot MembershipNode::snapshot_now() const {
  Writer writer;
  _state.encode(writer);
  _application.encode(writer);
  return Snapshot{_state.applied(), writer.take(), _paxos->schedule_at(_state.applied())};
}

void MembershipNode::merge(Output paxos_output, MembershipOutput& out) {
  for (PersistRecord& record : paxos_output.persist) out.persist.emplace_back(std::move(record));
  for (Send& paxos_send : paxos_output.send) send(paxos_send.to, std::move(paxos_send.message), out);
  if (paxos_output.installed) {
    COWORKER_ASSERT(!out.installed && out.decided.empty());
    out.installed = std::move(paxos_output.installed);
  }
  for (Decided& decided : paxos_output.decided) out.decided.push_back(std::move(decided));
  for (const ProposalId& withdrawn : _paxos->take_withdrawn()) out.withdrawn.push_back(withdrawn);
}

void MembershipNode::propose_entry(const MembershipEntry& entry, Paxos::Forwarding forwarding,
                                   MembershipOutput& out) {
  COWORKER_ASSERT(_paxos != nullptr);
  Paxos::Proposed proposed = _paxos->propose(encode(entry), forwarding);
  if (!proposed.id) return;
  Entry record;
  record.id = *proposed.id;
  record.value = encode(entry);
  out.proposed.push_back(std::move(record));  // before its decision, in this output or later
  merge(std::move(proposed.output), out);
}

void MembershipNode::send(ParticipantId to, MembershipMessage message, MembershipOutput& out) {
  COWORKER_ASSERT(to != no_participant);
  COWORKER_ASSERT(to != id());
  const Member* member = _state.member(to);
  std::string address;
  if (member != nullptr) {
    address = member->address;
  } else if (const auto seen = _addresses.find(to); seen != _addresses.end()) {
    address = seen->second;
  } else {
    return;  // nowhere to send it (a departed voter we never heard from): the sender retries
  }
  out.send.push_back(MembershipSend{to, std::move(address), std::move(message)});
}

void MembershipNode::persist_identity(Identity identity, MembershipOutput& out) {
  _identity = identity;
  out.persist.emplace_back(std::move(identity));
}

void MembershipNode::check_invariants() const {
  if (_paxos != nullptr) {
    COWORKER_ASSERT(id() != no_participant);
    COWORKER_ASSERT(_paxos->self() == id());
    COWORKER_ASSERT(_state.applied() <= _paxos->decided_through());
  }
  if (_exited) COWORKER_ASSERT(_paxos == nullptr);
  if (_leading) COWORKER_ASSERT(_paxos != nullptr && _paxos->leading());
  // Rule 3: a member whose removal this leadership proposed stays withheld
  // (by id: whichever boot of it heartbeats) until the removal is decided.
  for (const auto& [member, peer] : _peers) {
    COWORKER_ASSERT(!peer.removal || peer.withhold);
  }
}

}  // namespace coworker::consensus
