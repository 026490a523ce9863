#include "bucket/membership_host.h"

#include <algorithm>
#include <utility>

#include "consensus/assert.h"

namespace coworker::bucket {

using consensus::MembershipOutput;

MembershipHost::MembershipHost(const consensus::MembershipConfig& config, consensus::Prng& prng,
                               const consensus::MembershipDurable& recovered,
                               HostStorage& storage, MembershipEffects& effects)
    : _config(config),
      _storage(storage),
      _effects(effects),
      _table(config.params.buckets, config.params.replicas),
      _node(_config, prng, recovered, _table),
      _staged(recovered) {}

HostStorage::Ticket MembershipHost::checkpoint() {
  // Before the node's first identity record, a fresh directory has none.
  if (_staged.identity.data_dir == 0) return 0;
  return _storage.stage_membership_checkpoint(_staged);
}

void MembershipHost::start() {
  COWORKER_ASSERT(_pending.empty());
  COWORKER_ASSERT(_generation == 0);
  MembershipOutput started = _node.start();
  notice_generation();
  handle(std::move(started));
}

void MembershipHost::tick() {
  MembershipOutput ticked = _node.on_tick();
  notice_generation();
  handle(std::move(ticked));
}

void MembershipHost::deliver(ParticipantId from, ParticipantId to, const std::string& address,
                             const consensus::MembershipMessage& message) {
  MembershipOutput output = _node.on_message(from, to, address, message);
  notice_generation();
  handle(std::move(output));
}

void MembershipHost::call(const std::function<MembershipOutput(consensus::MembershipNode&)>& fn) {
  MembershipOutput output = fn(_node);
  notice_generation();
  handle(std::move(output));
}

// A new Paxos (an arrival, a new one after departing) is a boot for the
// observers: a new prefix from its snapshot.
void MembershipHost::notice_generation() {
  if (!_node.has_paxos() || _node.generation() == _generation) return;
  COWORKER_ASSERT(_node.generation() > _generation);
  _generation = _node.generation();
  _effects.booted(_node.paxos().snapshot());
}

// Step 1: records to storage, the rest held until they are durable, behind
// every earlier output.
void MembershipHost::handle(MembershipOutput output) {
  if (output.empty()) return;
  Pending pending;
  if (!output.persist.empty()) {
    for (const consensus::MembershipRecord& record : output.persist) _staged.apply(record);
    pending.ticket = _storage.stage_membership(std::move(output.persist));
    output.persist.clear();
    COWORKER_ASSERT(pending.ticket != 0);
    if (!_pending.empty()) COWORKER_ASSERT(pending.ticket > _pending.back().ticket);
  }
  pending.output = std::move(output);
  _pending.push_back(std::move(pending));
  on_durable();
}

std::vector<consensus::Entry> MembershipHost::unreleased_proposals(
    HostStorage::Ticket ticket) const {
  std::vector<consensus::Entry> entries;
  // One without records may hold a proposal whose accept a later output
  // persisted (a full window): only if a later output's records reached the
  // disk (tickets grow along the queue, and the disk keeps a prefix), never
  // when the records before it were lost (its forward or accept never
  // left: the boot may even be reused, seed 1960726941 of phaser-arrivals).
  // One whose records were lost holds only proposals whose accepts were
  // lost too.
  size_t last_kept = 0;  // one past the last output whose records were kept
  for (size_t i = 0; i < _pending.size(); i++) {
    if (_pending[i].ticket != 0 && _pending[i].ticket <= ticket) last_kept = i + 1;
  }
  for (size_t i = 0; i < last_kept; i++) {
    for (const consensus::Entry& entry : _pending[i].output.proposed) entries.push_back(entry);
  }
  return entries;
}

// Releases, in order, every output whose records are durable.
void MembershipHost::on_durable() {
  if (_draining) return;  // the outer call picks it up
  _draining = true;
  while (!_pending.empty() && _pending.front().ticket <= _storage.durable()) {
    MembershipOutput output = std::move(_pending.front().output);
    _pending.pop_front();
    release(output);
  }
  _draining = false;
}

// Step 2.
void MembershipHost::release(MembershipOutput& output) {
  COWORKER_ASSERT(output.persist.empty());
  for (const consensus::Entry& entry : output.proposed) _effects.proposed(entry);
  for (const consensus::ProposalId& id : output.withdrawn) _effects.withdrawn(id);
  const bool current = _node.has_paxos() && output.generation == _node.generation();
  if (current) {
    if (output.installed) _effects.installed(*output.installed);
    for (const consensus::Decided& decided : output.decided) _effects.learned(decided);
  }
  for (auto& send : output.send) {
    COWORKER_ASSERT(!send.address.empty());
    _effects.send(send.address, output.from, send.to, std::move(send.message));
  }
  if (!current || (!output.installed && output.decided.empty())) return;
  MembershipOutput applied = _node.apply(output);
  notice_generation();
  _effects.applied();
  handle(std::move(applied));
  govern();
}

void MembershipHost::feed_governments() {
  _feeding = true;
  _governed = false;
  govern();
}

// Step 3.
void MembershipHost::govern() {
  if (!_feeding) return;
  if (_node.recovering()) {
    _table.take_changes();  // superseded by the full refresh that follows
    return;
  }
  if (!_governed) {
    _governed = true;
    _table.take_changes();
    _fed_leaders.assign(_table.buckets(), consensus::no_participant);  // unknown
    for (uint32_t b = 0; b < _table.buckets(); b++) feed(b);
    migrate();
    return;
  }
  for (const GovernmentChange& change : _table.take_changes()) {
    COWORKER_ASSERT(change.bucket < _table.buckets());
    feed(change.bucket);
  }
  migrate();
}

// Step 3: a leadership of ours that follows another live member's (a move)
// starts only after lease + margin: the previous leader may hold a read
// lease from an ack sent before the move was decided, and must not serve a
// read that misses what we answer (DESIGN §3 covers departures; found by
// phaser-churn, seed 33144152). A departed or unreachable previous leader
// waited its lease out already (its acks were withheld that long). The
// first feed after a boot does not know the previous leader (another may
// have led since our last life, its lease still running), so it waits too.
void MembershipHost::feed(uint32_t bucket) {
  const CurrentGovernment& current = _table.current(bucket);
  consensus::Government government{current.slot, current.replicas, current.step};
  government.heir = current.heir;
  const ParticipantId before = _fed_leaders.at(bucket);
  const ParticipantId self = _node.id();
  const consensus::Member* previous = _node.state().member(before);
  const bool unknown = before == consensus::no_participant;
  const bool moved = before != self && previous != nullptr &&
                     previous->status != consensus::MemberStatus::unreachable;
  if (government.leader() == self && (unknown || moved)) {
    government.start_wait = _config.timing.lease_ticks + _config.timing.margin_ticks;
  }
  _fed_leaders[bucket] = government.leader();
  _effects.government(bucket, government);
}

// Step 5: a migration is over once its ack can never be decided as
// proposed: the bucket's step moved on (our ack applied, or another), or a
// participant it names is no longer a member (ids never come back). An
// unreachable participant may return, so its mark does not end the wait:
// the ack is proposed again until one of those happens. A hold ends only
// here, or when its migration is replaced before anything was proposed.
bool MembershipHost::migration_over(const Migration& migration) const {
  if (_table.current(migration.ack.bucket).step != migration.ack.step) return true;
  for (ParticipantId id : migration.ack.government) {
    if (!_node.state().is_member(id)) return true;
  }
  return false;
}

void MembershipHost::end_migration(std::map<uint32_t, Migration>::iterator it) {
  if (it->second.hold_sent) _effects.release_hold(it->first);
  _migrations.erase(it);
}

// What the scan makes of bucket b this turn (nothing: no migration).
std::optional<MembershipHost::Migration> MembershipHost::migration_for(uint32_t b) const {
  const CurrentGovernment& current = _table.current(b);
  const std::optional<consensus::MigrationAck> step = _table.next_step(b);
  bool growth = false;
  if (step) {
    for (ParticipantId id : step->government) {
      growth |= std::find(current.replicas.begin(), current.replicas.end(), id) ==
                current.replicas.end();
    }
  }
  // A government a removal left with us alone commits nothing until an ack
  // confirms it (phaser.h step 4): the bump does, before any growth.
  if (current.heir != consensus::no_participant) {
    return Migration{{b, current.step, current.replicas}, Migration::Kind::bump};
  }
  // After a boot, a growth ack proposed before the crash may still be
  // decided: the bucket is held and its step bumped (an ack that keeps its
  // government) before anything commits. A move voids older acks itself.
  if (_bump_after_boot && (!step || growth)) {
    return Migration{{b, current.step, current.replicas}, Migration::Kind::bump};
  }
  if (!step) return std::nullopt;
  return Migration{*step, growth ? Migration::Kind::growth : Migration::Kind::move};
}

// Step 6: the ack that repairs bucket b here (nothing: no repair, or none
// possible): the shrink while its government names us; the bump of its
// government while it does not (a growth in flight may name us, its leader
// believing what our copy held before it was void: the bump voids it, and
// the table's next step grows us anew, from a probe).
std::optional<MembershipHost::Migration> MembershipHost::repair_for(uint32_t b) const {
  if (_repairs.count(b) == 0) return std::nullopt;
  const CurrentGovernment& current = _table.current(b);
  const ParticipantId self = _node.id();
  std::vector<ParticipantId> rest;
  for (ParticipantId id : current.replicas) {
    if (id != self) rest.push_back(id);
  }
  if (rest.empty()) return std::nullopt;  // the last copy: its heir's to adopt (step 7)
  // Not named, and the government waits for its confirmation or adoption:
  // no growth is in flight to void (and our bump would confirm a member
  // whose copy may be void, taking the adoption away).
  if (rest.size() == current.replicas.size() && current.heir != consensus::no_participant) {
    return std::nullopt;
  }
  return Migration{{b, current.step, std::move(rest)}, Migration::Kind::repair};
}

// Step 7: the adoption of bucket b by us, the holder of its heir's data
// directory (nothing: not ours to adopt, or not yet). Only once its sole
// member has left the bucket unconfirmed for the departure timeout (its
// copy void, or it is down), so a live member confirms first.
std::optional<MembershipHost::Migration> MembershipHost::adoption_for(uint32_t b) const {
  const auto seen = _heirs.find(b);
  if (seen == _heirs.end()) return std::nullopt;
  if (_node.now() - seen->second.since < _config.timing.departure_ticks) return std::nullopt;
  const consensus::Member* member = _node.state().member(_node.id());
  if (member == nullptr || member->status != consensus::MemberStatus::active) return std::nullopt;
  return Migration{{b, _table.current(b).step, {_node.id()}}, Migration::Kind::adopt};
}

// Step 7: buckets whose heir's data directory is ours, from when we first
// saw each at its step. Not when the heir's incarnation is one whose id
// this directory gave up at a boot that found damage (void_through): its
// copies may be forgotten, void or reset since (phaser-repair seed
// 806933991: a copy forgotten at such a boot, the heir named before the
// arrival anew was decided, adopted empty).
void MembershipHost::watch_heirs() {
  const uint64_t dir = _node.nonce().data_dir;
  for (uint32_t b = 0; b < _table.buckets(); b++) {
    const CurrentGovernment& current = _table.current(b);
    const bool ours = current.heir != consensus::no_participant && current.heir_dir == dir &&
                      current.heir_incarnation > _node.void_through() &&
                      current.leader() != _node.id();
    const auto it = _heirs.find(b);
    if (!ours) {
      if (it != _heirs.end()) _heirs.erase(it);
    } else if (it == _heirs.end() || it->second.step != current.step) {
      _heirs[b] = Heir{current.step, _node.now()};
    }
  }
}

// Step 6: a repair here is over once we are out of the bucket's government
// at a step past the one it was first seen at (shrunk out, or our bump
// decided): the growth back is the leader's (step 5).
void MembershipHost::end_repairs() {
  const ParticipantId self = _node.id();
  for (auto it = _repairs.begin(); it != _repairs.end();) {
    const CurrentGovernment& current = _table.current(it->first);
    if (!it->second) it->second = current.step;  // the first scan with a fed table
    const bool named = std::find(current.replicas.begin(), current.replicas.end(), self) !=
                       current.replicas.end();
    it = !named && current.step != *it->second ? _repairs.erase(it) : std::next(it);
  }
}

void MembershipHost::repair(const std::vector<uint32_t>& buckets) {
  for (uint32_t b : buckets) {
    COWORKER_ASSERT(b < _table.buckets());
    _repairs.emplace(b, std::nullopt);
  }
}

// The members a migration adds (none for a bump, a move or a repair).
std::vector<ParticipantId> MembershipHost::newcomers(const Migration& migration) const {
  std::vector<ParticipantId> ids;
  if (migration.kind != Migration::Kind::growth) return ids;
  const CurrentGovernment& current = _table.current(migration.ack.bucket);
  for (ParticipantId id : migration.ack.government) {
    if (std::find(current.replicas.begin(), current.replicas.end(), id) == current.replicas.end()) {
      ids.push_back(id);
    }
  }
  COWORKER_ASSERT(!ids.empty());
  return ids;
}

void MembershipHost::propose(Migration& migration, std::vector<consensus::MigrationAck>& acks) {
  migration.state = Migration::State::proposed;
  // At least once: again until it is over.
  migration.retry_at = _node.now() + 10 * _config.timing.heartbeat_ticks;
  acks.push_back(migration.ack);
}

// Step 5: the next steps of the buckets we lead. Effects go out after the
// scan: an answer may come back at once (the simulator) and apply more.
void MembershipHost::migrate() {
  if (!_feeding || !_governed || !_node.has_paxos()) return;
  if (_node.recovering()) return;
  if (_migrating) return;  // called back from inside: the outer scan finishes
  _migrating = true;
  for (auto it = _migrations.begin(); it != _migrations.end();) {
    auto next = std::next(it);
    if (migration_over(it->second)) end_migration(it);
    it = next;
  }
  end_repairs();
  watch_heirs();
  const ParticipantId self = _node.id();
  const Tick now = _node.now();
  const Tick retry = _config.timing.heartbeat_ticks;
  consensus::Acks acks;
  struct Ask {
    uint32_t bucket;
    uint64_t step;
    std::vector<ParticipantId> newcomers;
  };
  std::vector<Ask> asks;
  for (uint32_t b = 0; b < _table.buckets(); b++) {
    std::optional<Migration> wanted = repair_for(b);
    if (!wanted && _table.current(b).leader() != self) {
      wanted = adoption_for(b);
      if (!wanted) continue;
    } else if (!wanted) {
      // A void copy leads nothing: no bump confirms it, no growth is its.
      if (repairing(b)) continue;
      wanted = migration_for(b);
    }
    // With migrations off (the simulator's families choose), a sole member
    // still confirms, or its heir adopts: no bucket could commit otherwise.
    if (!_migrations_on && _table.current(b).heir == consensus::no_participant) continue;
    auto it = _migrations.find(b);
    if (it != _migrations.end() && wanted && it->second.ack != wanted->ack &&
        it->second.state == Migration::State::asked &&
        it->second.kind != Migration::Kind::bump) {
      // The target moved while the step did not, before anything was
      // proposed: the growth so far ends (nothing names its newcomers), the
      // new step replaces it.
      if (it->second.hold_sent) _effects.release_hold(b);
      it->second = *wanted;
    }
    if (it == _migrations.end()) {
      if (!wanted) continue;
      it = _migrations.emplace(b, *wanted).first;
    }
    Migration& migration = it->second;
    if (now < migration.retry_at) continue;
    if (migration.state == Migration::State::proposed) {
      propose(migration, acks.acks);
      continue;
    }
    switch (migration.kind) {
      case Migration::Kind::repair:
        // No hold: the void copy starts no leadership (host.h).
        _repairs_proposed++;
        propose(migration, acks.acks);
        break;
      case Migration::Kind::move:
        // After a boot a move is held too, until its step moves on.
        if (_bump_after_boot) {
          migration.hold_sent = true;
          asks.push_back({b, migration.ack.step, {}});
        }
        propose(migration, acks.acks);
        break;
      case Migration::Kind::bump:
      case Migration::Kind::adopt:
      case Migration::Kind::growth:
        // Proposed on the answer (held; ready), asked again until then.
        migration.retry_at = now + retry;
        migration.hold_sent = true;
        asks.push_back({b, migration.ack.step, newcomers(migration)});
        break;
    }
  }
  _bump_after_boot = false;
  if (!acks.acks.empty()) {
    _migrations_proposed += acks.acks.size();
    handle(_node.propose(acks));
  }
  for (Ask& ask : asks) _effects.prepare(ask.bucket, ask.step, std::move(ask.newcomers));
  _migrating = false;
}

void MembershipHost::growth_answer(uint32_t bucket, uint64_t step, BucketHost::Growth growth) {
  const auto it = _migrations.find(bucket);
  if (it == _migrations.end()) {
    _effects.release_hold(bucket);  // over meanwhile: nothing to hold for
    return;
  }
  Migration& migration = it->second;
  // A stale answer (another step's) changes nothing: this migration's own
  // ask and answer are on their way.
  if (migration.ack.step != step || migration.state != Migration::State::asked) return;
  const bool proposable = migration.kind == Migration::Kind::growth
                              ? growth == BucketHost::Growth::ready
                              : growth == BucketHost::Growth::held;
  if (!proposable) return;  // asked again on a later turn
  std::vector<consensus::MigrationAck> acks;
  propose(migration, acks);
  _migrations_proposed++;
  handle(_node.propose(consensus::Acks{std::move(acks)}));
}

// Step 4.
void MembershipHost::storage_hung(Tick now, bool hung) {
  const Tick departure = _config.timing.departure_ticks;
  if (!hung) {
    _hung_since.reset();
    if (!_stuck_by_storage) return;
    _stuck_by_storage = false;
    call([](consensus::MembershipNode& node) { return node.set_stuck(false); });
    return;
  }
  if (!_hung_since) _hung_since = now;
  COWORKER_ASSERT(now >= *_hung_since);
  if (_stuck_by_storage || now - *_hung_since < departure) return;
  _stuck_by_storage = true;
  call([](consensus::MembershipNode& node) { return node.set_stuck(true); });
}

}  // namespace coworker::bucket
