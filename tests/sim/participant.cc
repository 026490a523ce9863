#include "tests/sim/participant.h"

#include <utility>

#include "bucket/repair.h"
#include "consensus/assert.h"

namespace coworker::sim {

Participant::Participant(ParticipantId id, const ParticipantOptions& options, Effects& effects)
    : _id(id), _options(options), _effects(effects),
      _disk(options.disk, consensus::derive_seed(options.seed, (uint64_t{10} << 32) | id)) {
  if (!membership_mode()) COWORKER_ASSERT(options.configuration.is_member(id));
}

bool Participant::has_paxos() const {
  if (!up()) return false;
  return membership_mode() ? _member->node().has_paxos() : true;
}

consensus::Paxos& Participant::paxos() {
  COWORKER_ASSERT(has_paxos());
  return membership_mode() ? _member->node().paxos() : *_paxos;
}

const consensus::Paxos& Participant::paxos() const {
  COWORKER_ASSERT(has_paxos());
  return membership_mode() ? _member->node().paxos() : *_paxos;
}

const LogApp& Participant::app() const {
  COWORKER_ASSERT(up());
  COWORKER_ASSERT(!membership_mode());
  return *_app;
}

MemberHost& Participant::member() {
  COWORKER_ASSERT(up());
  COWORKER_ASSERT(membership_mode());
  return *_member;
}

const MemberHost& Participant::member() const {
  COWORKER_ASSERT(up());
  COWORKER_ASSERT(membership_mode());
  return *_member;
}

Slot Participant::applied() const {
  COWORKER_ASSERT(up());
  return membership_mode() ? _member->node().state().applied() : _app->applied();
}

void Participant::boot(Tick now) {
  COWORKER_ASSERT(!up());
  _incarnation++;
  _booted = true;
  // Each boot draws from its own stream: what one participant draws never
  // shifts another's, so a scenario change stays local in the trace.
  _prng = std::make_unique<consensus::Prng>(
      consensus::derive_seed(_options.seed, (_id << 20) | _incarnation));
  _now = now;
  if (membership_mode()) {
    // Damage at rest found by the recovery: the server's repair, before
    // anything starts (bucket/repair.h).
    const std::optional<ParticipantId> repaired = _disk.repair_at_boot();
    _storage = std::make_unique<SimStorage>(_disk, *_prng);
    _storage->set_now(now);
    _member = std::make_unique<MemberHost>(_id, _options.hosts, _options.seed, *_options.membership,
                                           _options.timing, _options.limits, *_prng,
                                           _disk.recovered().membership, *_storage, _member_effects);
    // Given up: the id it held before, if it no longer serves as it (by
    // what it does, not by what the plan says).
    if (repaired && *repaired != consensus::no_participant && _member->node().id() != *repaired) {
      _given_up.insert(*repaired);
    }
    // Void copies (repaired per bucket, at this boot or an earlier one)
    // are shrunk out, as the server's ClusterNode asks.
    _member->engine().repair(bucket::void_copies(_disk.recovered()));
    _member->engine().set_migrations(_options.membership->migrations);
    _member->engine().start();
    _boot_ticket = _disk.issued();
    start_phasers(now);
    return;
  }
  const consensus::Durable& recovered = _disk.image().paxos;
  _paxos = std::make_unique<consensus::Paxos>(_id, _options.configuration, _options.timing,
                                              _options.limits, *_prng, recovered);
  _app.emplace();
  if (recovered.snapshot.slot > 0) _app->install(recovered.snapshot);
  _effects.booted(_id, recovered.snapshot);
  handle(now, _paxos->start());
  _boot_ticket = _disk.issued();
}

void Participant::crash() {
  COWORKER_ASSERT(up());
  _pending.clear();  // never sent: their records may not be durable
  _disk.crash();
  // Proposals whose records the crash left on the disk (disk.h) may still
  // be decided.
  std::vector<consensus::Entry> unreleased;
  if (_member && _disk.kept_through() != 0) {
    unreleased = _member->engine().unreleased_proposals(_disk.kept_through());
  }
  for (const consensus::Entry& entry : unreleased) _effects.proposed_unreleased(_id, entry);
  _paxos.reset();
  _app.reset();
  _phaser_host.reset();
  _member.reset();
  _storage.reset();
  _prng.reset();
  _booted = false;
}

size_t Participant::pending_outputs() const {
  if (up() && membership_mode()) return _member->engine().pending_outputs();
  return _pending.size();
}

void Participant::set_clock(uint32_t rate_ppm, uint32_t phase_ppm) {
  COWORKER_ASSERT(rate_ppm > 0 && rate_ppm < 2'000'000);
  COWORKER_ASSERT(phase_ppm < 1'000'000);
  _clock_ppm = rate_ppm;
  _clock_acc = phase_ppm;
}

void Participant::tick(Tick now) {
  COWORKER_ASSERT(up());
  _now = now;
  _disk.tick(now);
  // The ticks its own clock counted since the last call (only up hosts are
  // ticked: a restart resumes the count where the crash left it).
  _clock_acc += _clock_ppm;
  const uint64_t own_ticks = _clock_acc / 1'000'000;
  _clock_acc %= 1'000'000;
  if (membership_mode()) {
    _storage->set_now(now);
    _member->engine().on_durable();
    tick_member(now, own_ticks);
    if (_phaser_host) {
      tick_phasers(now);
    } else {
      start_phasers(now);  // the arrival gave us an id
    }
    return;
  }
  drain(now);
  for (uint64_t k = 0; k < own_ticks; k++) handle(now, _paxos->on_tick());
}

void Participant::tick_member(Tick now, uint64_t own_ticks) {
  bucket::MembershipHost& engine = _member->engine();
  for (uint64_t k = 0; k < own_ticks; k++) engine.tick();
  // A checkpoint now and then, as a server's rounds make them (DESIGN §6):
  // a restart recovers the membership state from it and what follows.
  if (++_member_ticks % membership_checkpoint_ticks == _id % membership_checkpoint_ticks) {
    engine.checkpoint();
  }
  std::vector<std::pair<ParticipantId, Probe>> probes;
  std::vector<consensus::MembershipOutput> outputs;
  _member->tick_phasers(now, probes, outputs);
  for (auto& output : outputs) engine.handle(std::move(output));
  for (auto& [host, probe] : probes) {
    if (host != _id) _effects.send(_id, host, Payload{probe});
  }
}

void Participant::deliver(Tick now, ParticipantId from, const Payload& payload) {
  COWORKER_ASSERT(up());
  _now = now;
  if (!membership_mode()) {
    handle(now, _paxos->on_message(from, std::get<consensus::Message>(payload)));
    return;
  }
  _storage->set_now(now);
  if (const auto* phaser = std::get_if<PhaserPacket>(&payload)) {
    // For the id we serve under now; one addressed to an earlier id of this
    // host (it arrived anew since) is lost, as a closed connection would be.
    if (_phaser_host && _phaser_host->self() == phaser->to) {
      _phaser_host->deliver(now, phaser->from, phaser->message);
    }
    return;
  }
  if (const auto* probe = std::get_if<Probe>(&payload)) {
    if (auto answer = _member->on_probe(now, *probe)) _effects.send(_id, from, Payload{*answer});
    return;
  }
  const auto& packet = std::get<MemberPacket>(payload);
  _member->engine().deliver(packet.from, packet.to, address_of(from), packet.message);
}

void Participant::act(
    Tick now, const std::function<consensus::MembershipOutput(consensus::MembershipNode&)>& call) {
  COWORKER_ASSERT(up());
  COWORKER_ASSERT(membership_mode());
  _now = now;
  _storage->set_now(now);
  _member->engine().call(call);
}

std::optional<consensus::ProposalId> Participant::propose(
    Tick now, std::string value,
    const std::function<void(const consensus::ProposalId&)>& accepted,
    const std::vector<ParticipantId>* voters) {
  COWORKER_ASSERT(up());
  if (membership_mode()) return std::nullopt;  // the membership node proposes its own entries
  if (_disk.durable() < _boot_ticket) return std::nullopt;
  auto proposed = voters == nullptr ? _paxos->propose(std::move(value))
                                    : _paxos->propose_reconfiguration(
                                          std::move(value), _paxos->latest_voters(), *voters);
  if (proposed.id) accepted(*proposed.id);
  handle(now, std::move(proposed.output));
  return proposed.id;
}

Disk::Ticket Participant::write(Tick now, std::vector<DiskRecord> records) {
  const Disk::Ticket ticket = _disk.write(now, *_prng, std::move(records));
  _disk.tick(now);  // a zero-latency disk completes at once
  return ticket;
}

// Paxos mode: the records to the disk, the rest held until they are
// durable, behind every earlier output.
void Participant::handle(Tick now, consensus::Output output) {
  COWORKER_ASSERT(!membership_mode());
  if (output.empty()) return;
  Pending pending;
  if (!output.persist.empty()) {
    std::vector<DiskRecord> records;
    records.reserve(output.persist.size());
    for (auto& record : output.persist) records.emplace_back(std::move(record));
    output.persist.clear();
    pending.ticket = write(now, std::move(records));
  }
  pending.output = std::move(output);
  _pending.push_back(std::move(pending));
  drain(now);
}

// Releases, in order, every output whose records are durable.
void Participant::drain(Tick now) {
  if (_draining) return;  // the outer drain picks it up
  _draining = true;
  while (up() && !_pending.empty() && _pending.front().ticket <= _disk.durable()) {
    consensus::Output output = std::move(_pending.front().output);
    _pending.pop_front();
    release(now, output);
  }
  _draining = false;
  maybe_compact(now);
}

// ---- the phaser stack -----------------------------------------------------------------

// The phasers serve under the participant's arrival id (the host number for
// a static member); a participant that arrives anew gets a new host for the
// new id that continues from the old one's state (PhaserHost's second
// constructor), as a server core's replace_host does.
void Participant::start_phasers(Tick now) {
  if (_options.phasers == nullptr) return;
  const ParticipantId id = _member->node().id();
  if (id == consensus::no_participant) return;  // arriving: no id yet
  if (_phaser_host && _phaser_host->self() == id) return;
  if (_phaser_host) {
    _phaser_host = std::make_unique<PhaserHost>(id, *_phaser_host);
  } else {
    _phaser_host = std::make_unique<PhaserHost>(id, _options.phasers->phaser, _disk, *_prng,
                                                _phaser_effects);
  }
  _member->engine().feed_governments();
}

void Participant::tick_phasers(Tick now) {
  _now = now;
  bucket::MembershipHost& engine = _member->engine();
  // A disk stuck for the departure timeout stops the heartbeats (DESIGN §4).
  engine.storage_hung(now, _disk.hung());
  engine.govern();  // recovery may have ended on this tick
  _phaser_host->tick(now, 1);
  start_phasers(now);  // arrived anew on this tick: serve under the new id
}

void Participant::PhaserEffects::send(ParticipantId from, ParticipantId to,
                                      consensus::PhaserMessage message) {
  COWORKER_ASSERT(_p._phaser_host != nullptr && from == _p._phaser_host->self());
  // Never again as an id given up at a repair: the checkers count its
  // copies as lost (PhaserWorld::discarded).
  COWORKER_ASSERT(!_p.gave_up(from));
  // Phasers address arrival ids; the network hosts: the member's address
  // names its host (unknown to our membership view: lost).
  const consensus::Member* member = _p._member->node().state().member(to);
  if (member == nullptr) return;
  const ParticipantId host = host_of(member->address);
  _p._effects.send(_p._id, host, Payload{PhaserPacket{from, to, std::move(message), _p._incarnation}});
}

void Participant::PhaserEffects::checkpoint_membership(ParticipantId) {
  _p._member->engine().checkpoint();
}

void Participant::PhaserEffects::reply(ParticipantId, const consensus::Reply& reply) {
  _p._effects.phaser_reply(_p._id, reply);
}

void Participant::PhaserEffects::report(ParticipantId, uint32_t, ParticipantId silent) {
  _p.act(_p._now, [silent](consensus::MembershipNode& node) { return node.report_silent(silent); });
}

// ---- the membership host's effects ----------------------------------------------------

void Participant::MemberEffects::send(const std::string& address, ParticipantId from,
                                      ParticipantId to, consensus::MembershipMessage message) {
  COWORKER_ASSERT(!_p.gave_up(from));  // as above
  _p._effects.send(_p._id, host_of(address), Payload{MemberPacket{from, to, std::move(message)}});
}

void Participant::MemberEffects::government(uint32_t bucket,
                                            const consensus::Government& government) {
  COWORKER_ASSERT(_p._phaser_host != nullptr);
  _p._phaser_host->government(_p._now, bucket, government);
}

void Participant::MemberEffects::prepare(uint32_t bucket, uint64_t step,
                                        std::vector<ParticipantId> newcomers) {
  COWORKER_ASSERT(_p._phaser_host != nullptr);
  const bucket::BucketHost::Growth growth =
      _p._phaser_host->prepare(_p._now, bucket, step, newcomers);
  _p._member->engine().growth_answer(bucket, step, growth);
}

void Participant::MemberEffects::release_hold(uint32_t bucket) {
  COWORKER_ASSERT(_p._phaser_host != nullptr);
  _p._phaser_host->release_hold(_p._now, bucket);
}

void Participant::MemberEffects::booted(const consensus::Snapshot& snapshot) {
  _p._effects.booted(_p._id, snapshot);
}

void Participant::MemberEffects::proposed(const consensus::Entry& entry) {
  _p._effects.proposed(_p._id, entry);
}

void Participant::MemberEffects::withdrawn(const consensus::ProposalId& id) {
  _p._effects.withdrawn(_p._id, id);
}

void Participant::MemberEffects::installed(const consensus::Snapshot& snapshot) {
  _p._effects.installed(_p._id, snapshot);
}

void Participant::MemberEffects::learned(const consensus::Decided& decided) {
  _p._effects.learned(_p._id, decided);
}

void Participant::MemberEffects::applied() { _p._effects.applied(_p._id); }

void Participant::PhaserEffects::leader_committed(ParticipantId, const consensus::Write& write) {
  _p._effects.phaser_committed(_p._id, write);
}

void Participant::PhaserEffects::repair(ParticipantId, uint32_t bucket) {
  _p._effects.phaser_repair(_p._id, bucket);
  // The copy is void: shrunk out, as the server's ClusterNode::repair asks.
  if (_p._member) _p._member->engine().repair({bucket});
}

void Participant::release(Tick, consensus::Output& output) {
  COWORKER_ASSERT(output.persist.empty());
  if (output.installed) {
    _app->install(*output.installed);
    _effects.installed(_id, *output.installed);
  }
  for (const consensus::Decided& decided : output.decided) {
    _app->apply(decided);
    _effects.learned(_id, decided);
  }
  for (auto& send : output.send) {
    _effects.send(_id, send.to, Payload{std::move(send.message)});
  }
}

// The application snapshots every snapshot_interval applied slots and hands
// the snapshot to Paxos, which compacts its log behind it.
void Participant::maybe_compact(Tick now) {
  const Slot interval = _options.snapshot_interval;
  if (interval == 0 || !up() || membership_mode()) return;  // the node compacts itself
  const Slot applied = _app->applied();
  if (applied < _paxos->compacted_through() + interval) return;
  handle(now, _paxos->compact(_app->snapshot()));
}

}  // namespace coworker::sim
