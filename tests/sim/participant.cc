#include "tests/sim/participant.h"

#include <utility>

#include "reactor/assert.h"

namespace coworker::sim {

Participant::Participant(ParticipantId id, const ParticipantOptions& options, Effects& effects)
    : _id(id), _options(options), _effects(effects), _disk(options.disk) {
  COWORKER_ASSERT(options.configuration.is_member(id));
}

consensus::Paxos& Participant::paxos() {
  COWORKER_ASSERT(up());
  return *_paxos;
}

const consensus::Paxos& Participant::paxos() const {
  COWORKER_ASSERT(up());
  return *_paxos;
}

const LogApp& Participant::app() const {
  COWORKER_ASSERT(up());
  return *_app;
}

void Participant::boot(Tick now) {
  COWORKER_ASSERT(!up());
  _incarnation++;
  // Each boot draws from its own stream: what one participant draws never
  // shifts another's, so a scenario change stays local in the trace.
  _prng = std::make_unique<consensus::Prng>(
      consensus::derive_seed(_options.seed, (_id << 20) | _incarnation));
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
  _paxos.reset();
  _app.reset();
  _prng.reset();
}

void Participant::tick(Tick now) {
  COWORKER_ASSERT(up());
  _disk.tick(now);
  drain(now);
  handle(now, _paxos->on_tick());
}

void Participant::deliver(Tick now, ParticipantId from, const Payload& payload) {
  COWORKER_ASSERT(up());
  handle(now, _paxos->on_message(from, std::get<consensus::Message>(payload)));
}

std::optional<consensus::ProposalId> Participant::propose(
    Tick now, std::string value,
    const std::function<void(const consensus::ProposalId&)>& accepted,
    const std::vector<ParticipantId>* voters) {
  COWORKER_ASSERT(up());
  if (_disk.durable() < _boot_ticket) return std::nullopt;
  auto proposed = voters == nullptr ? _paxos->propose(std::move(value))
                                    : _paxos->propose_reconfiguration(
                                          std::move(value), _paxos->latest_voters(), *voters);
  if (proposed.id) accepted(*proposed.id);
  handle(now, std::move(proposed.output));
  return proposed.id;
}

void Participant::handle(Tick now, consensus::Output output) {
  if (output.empty()) return;
  Pending pending;
  if (!output.persist.empty()) {
    std::vector<DiskRecord> records;
    records.reserve(output.persist.size());
    for (auto& record : output.persist) records.emplace_back(std::move(record));
    output.persist.clear();
    pending.ticket = _disk.write(now, *_prng, std::move(records));
    _disk.tick(now);  // a zero-latency disk completes at once
  }
  pending.output = std::move(output);
  _pending.push_back(std::move(pending));
  drain(now);
}

// Releases, in order, every output whose records are durable.
void Participant::drain(Tick now) {
  if (_draining) return;  // the outer drain picks it up
  _draining = true;
  while (!_pending.empty() && _pending.front().ticket <= _disk.durable()) {
    consensus::Output output = std::move(_pending.front().output);
    _pending.pop_front();
    release(output);
  }
  _draining = false;
  maybe_compact(now);
}

void Participant::release(consensus::Output& output) {
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
  if (interval == 0 || !up()) return;
  const Slot applied = _app->applied();
  if (applied < _paxos->compacted_through() + interval) return;
  handle(now, _paxos->compact(_app->snapshot()));
}

}  // namespace coworker::sim
