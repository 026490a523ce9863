#include "tests/sim/simulation.h"

#include <fmt/core.h>

#include <utility>

#include "consensus/assert.h"
#include "tests/sim/membership_checker.h"
#include "tests/sim/phaser_layer.h"
#include "tests/sim/schedule_checker.h"

namespace coworker::sim {

namespace {

consensus::Configuration configuration_of(const SimOptions& options) {
  COWORKER_ASSERT(options.voters >= 1);
  COWORKER_ASSERT(options.voters <= options.participants);
  consensus::Configuration configuration;
  for (ParticipantId id = 1; id <= options.participants; id++) {
    (id <= options.voters ? configuration.voters : configuration.learners).push_back(id);
  }
  configuration.check();
  return configuration;
}

std::string describe_schedule(const consensus::Schedule& schedule) {
  std::string text;
  for (const auto& [first, scheduled] : schedule) {
    text += fmt::format("{}{}:", text.empty() ? "" : ",", first);
    for (ParticipantId id : scheduled.voters) text += fmt::format(" {}", id);
  }
  return text;
}

}  // namespace

Simulation::Simulation(uint64_t seed, const SimOptions& options, Trace& trace)
    : _seed(seed),
      _trace(trace),
      _prng(consensus::derive_seed(seed, 0)),
      _membership_options(options.membership),
      _phaser_options(options.phasers),
      _participant_options{configuration_of(options),
                           options.timing,
                           options.limits,
                           options.disk,
                           options.snapshot_interval,
                           seed,
                           _membership_options ? &*_membership_options : nullptr,
                           options.participants,
                           _phaser_options ? &*_phaser_options : nullptr},
      _network(_prng, options.participants, options.network) {
  auto agreement = std::make_unique<AgreementChecker>();
  auto proposals = std::make_unique<ProposalChecker>();
  _agreement = agreement.get();
  _proposals = proposals.get();
  add_checker(std::move(agreement));
  add_checker(std::move(proposals));
  add_checker(std::make_unique<LeaseChecker>());
  _exited.assign(options.participants + 1, false);
  for (ParticipantId id = 1; id <= options.participants; id++) {
    _participants.push_back(std::make_unique<Participant>(id, _participant_options, *this));
  }
  if (options.clock_drift_ppm > 0) {
    COWORKER_ASSERT(options.clock_drift_ppm < 1'000'000);
    consensus::Prng clocks(consensus::derive_seed(seed, 6));
    for (auto& participant : _participants) {
      const uint64_t rate = 1'000'000 - options.clock_drift_ppm +
                            clocks.below(2 * uint64_t{options.clock_drift_ppm} + 1);
      const uint64_t phase = clocks.below(1'000'000);
      participant->set_clock(static_cast<uint32_t>(rate), static_cast<uint32_t>(phase));
      _trace.event(_now, "clock", participant->id(), rate);
    }
  }
  if (options.membership) {
    start_membership(options);
    return;
  }
  consensus::Schedule schedule;
  schedule.emplace(1, consensus::ScheduledVoters{0, _participant_options.configuration.voters});
  add_checker(std::make_unique<ScheduleChecker>(std::move(schedule), 0,
                                                options.limits.window_slots_max));
  for (auto& participant : _participants) participant->boot(_now);
}

// Membership mode: the schedule and membership checkers start where the
// participants do — at slot 0 with host 1 bootstrapping, or (static start)
// at slot N with hosts 1..N members and a snapshot on every disk.
void Simulation::start_membership(const SimOptions& options) {
  const MembershipSimOptions& membership = *_membership_options;
  const uint32_t members = membership.static_members;
  COWORKER_ASSERT(members <= options.participants);
  consensus::Schedule schedule;
  Slot through = 0;
  if (members == 0) {
    schedule.emplace(1, consensus::ScheduledVoters{0, {1}});
  } else {
    const consensus::MembershipDurable image = static_image(membership, 1, _seed);
    schedule = image.paxos.snapshot.schedule;
    through = members;
    const auto header = consensus::MembershipState::header(image.paxos.snapshot.bytes);
    COWORKER_ASSERT(header.has_value());
    _agreement->start_at(members, header->chain);
  }
  const std::vector<ParticipantId> voters = schedule.rbegin()->second.voters;
  add_checker(std::make_unique<ScheduleChecker>(std::move(schedule), through,
                                                options.limits.window_slots_max));
  auto checker = std::make_unique<MembershipChecker>(membership, _seed, voters);
  _membership = checker.get();
  add_checker(std::move(checker));
  if (_phaser_options) {
    // Every host may serve phasers (under whatever arrival id it holds).
    auto layer = std::make_unique<PhaserLayer>(*this, *_phaser_options, membership.params.buckets,
                                               static_cast<uint32_t>(_participants.size()), _seed);
    _phaser_layer = layer.get();
    add_checker(std::move(layer));
  }
  if (members == 0) {
    _participants[0]->boot(_now);
    return;
  }
  for (ParticipantId host = 1; host <= members; host++) {
    DurableImage image;
    image.membership = static_image(membership, host, _seed);
    node(host).disk().install(std::move(image));
    node(host).boot(_now);
  }
}

Simulation::~Simulation() = default;

Participant& Simulation::node(ParticipantId id) {
  COWORKER_ASSERT(id >= 1);
  COWORKER_ASSERT(id <= _participants.size());
  return *_participants[id - 1];
}

const Participant& Simulation::node(ParticipantId id) const {
  COWORKER_ASSERT(id >= 1);
  COWORKER_ASSERT(id <= _participants.size());
  return *_participants[id - 1];
}

void Simulation::step() {
  _now++;
  for (auto& participant : _participants) {
    if (participant->up()) participant->tick(_now);
  }
  _network.deliver_due(_now, [&](Packet& packet) { deliver(packet); });
  for (auto& participant : _participants) {
    // A participant that left gracefully and departed exits (membership).
    if (participant->exited() && participant->pending_outputs() == 0) {
      _trace.event(_now, "exit", participant->id());
      _trace.note(_now, fmt::format("host {} exits after leaving", participant->id()));
      crash(participant->id());
      _exited[participant->id()] = true;
    }
  }
  for (auto& checker : _checkers) checker->after_tick(*this);
  if (_network.in_flight() > in_flight_max) {
    violate("network", fmt::format("message storm: {} packets in flight", _network.in_flight()));
  }
}

void Simulation::deliver(Packet& packet) {
  Participant& to = node(packet.to);
  if (!to.up()) return;
  _trace.event(_now, "deliver", packet.from, packet.to, digest_payload(packet.payload));
  if (_trace.verbose()) {
    _trace.note(_now, fmt::format("{} -> {} {} {}", packet.from, packet.to,
                                  payload_name(packet.payload), describe_payload(packet.payload)));
  }
  if (_tap) _tap(packet);
  if (const auto* phaser = std::get_if<PhaserPacket>(&packet.payload); phaser && _phaser_layer) {
    _phaser_layer->delivered(packet.to, *phaser);
  }
  to.deliver(_now, packet.from, packet.payload);
}

void Simulation::run(Tick ticks) {
  for (Tick i = 0; i < ticks && !violated(); i++) step();
}

bool Simulation::run_until(const std::function<bool()>& done, Tick max_ticks) {
  for (Tick i = 0; i < max_ticks; i++) {
    if (done()) return true;
    if (violated()) return false;
    step();
  }
  return done();
}

std::optional<consensus::ProposalId> Simulation::propose(ParticipantId at, std::string value,
                                                         const std::vector<ParticipantId>* voters) {
  Participant& participant = node(at);
  if (!participant.up()) return std::nullopt;
  const std::string copy = value;
  // The checkers hear of the proposal before it can be decided (a single
  // voter decides within the call).
  return participant.propose(_now, std::move(value), [&](const consensus::ProposalId& id) {
    _trace.event(_now, "propose", at, id.boot, id.sequence, digest_bytes(copy));
    if (_trace.verbose()) {
      _trace.note(_now,
                  fmt::format("propose at {}: {}/{}/{}", at, id.proposer, id.boot, id.sequence));
    }
    for (auto& checker : _checkers) checker->on_propose(*this, at, id, copy);
  }, voters);
}

void Simulation::crash(ParticipantId id) {
  Participant& participant = node(id);
  COWORKER_ASSERT(participant.up());
  _trace.event(_now, "crash", id);
  _trace.note(_now, fmt::format("crash {}", id));
  participant.crash();
  if (_trace.verbose()) {
    _trace.note(_now, fmt::format("disk of {}: {}", id, participant.disk().last_crash()));
  }
  for (auto& checker : _checkers) checker->on_crash(*this, id);
}

void Simulation::restart(ParticipantId id) {
  Participant& participant = node(id);
  COWORKER_ASSERT(!participant.up());
  _trace.event(_now, "restart", id);
  _trace.note(_now, fmt::format("restart {}", id));
  _exited[id] = false;
  // What the restart recovers went through the server's fold (disk.h); a
  // difference from the protocols' own fold was found at the crash.
  if (const auto& why = participant.disk().image().fold_violation) {
    violate("recovery", fmt::format("participant {} {}", id, *why));
  }
  participant.boot(_now);
}

void Simulation::inject(ParticipantId from, ParticipantId to, consensus::Message message) {
  _network.inject(_now + 1, from, to, Payload{std::move(message)});
}

ParticipantId Simulation::leader() const {
  ParticipantId best = 0;
  consensus::Ballot ballot;
  for (const auto& participant : _participants) {
    if (!participant->has_paxos() || !participant->paxos().leading()) continue;
    if (best == 0 || participant->paxos().ballot() > ballot) {
      best = participant->id();
      ballot = participant->paxos().ballot();
    }
  }
  return best;
}

void Simulation::add_checker(std::unique_ptr<Checker> checker) {
  _checkers.push_back(std::move(checker));
}

void Simulation::violate(std::string_view checker, std::string message) {
  if (violated()) return;  // the first one is the one to debug
  _violation = fmt::format("{}: {} (tick {})", checker, message, _now);
  _trace.event(_now, "violation", digest_bytes(_violation));
  _trace.note(_now, "VIOLATION " + _violation);
  if (_trace.verbose()) _trace.note(_now, "state:\n" + describe_state());
}

std::optional<std::string> Simulation::unsettled() const {
  if (leader() == 0) return std::string("no leader");
  for (const auto& checker : _checkers) {
    if (auto reason = checker->unsettled(*this))
      return fmt::format("{}: {}", checker->name(), *reason);
  }
  return std::nullopt;
}

bool Simulation::settle(Tick max_ticks) {
  if (run_until([&] { return !unsettled().has_value(); }, max_ticks)) return true;
  if (!violated()) {
    // Every checker's reason, not only the first: a membership stall once
    // passed for an undecided proposal (seed 33150552 of phaser-churn,
    // docs/PROTOCOL.md "Limits and known gaps").
    std::string reasons;
    if (leader() == 0) reasons = "no leader";
    for (const auto& checker : _checkers) {
      if (auto reason = checker->unsettled(*this)) {
        reasons += fmt::format("{}{}: {}", reasons.empty() ? "" : "; ", checker->name(), *reason);
      }
    }
    violate("liveness", fmt::format("not settled {} ticks after healing: {}", max_ticks,
                                    reasons.empty() ? "?" : reasons));
  }
  return false;
}

std::string Simulation::describe_state() const {
  std::string text;
  for (const auto& participant : _participants) {
    if (!participant->up()) {
      text += fmt::format("  node {}: down\n", participant->id());
      continue;
    }
    if (participant->membership_mode()) {
      text += describe_member(*participant);
      continue;
    }
    const consensus::Paxos& paxos = participant->paxos();
    static constexpr const char* statuses[] = {"follower", "candidate", "leader"};
    const auto& stats = paxos.stats();
    text += fmt::format(
        "  node {} boot {}: {} ballot={}.{} promised={}.{} leader={} decided={} compacted={} "
        "applied={} pending={} outputs={} lease={} elections={}/{} dropped_forwards={} "
        "schedule={}\n",
        participant->id(), participant->incarnation(), statuses[static_cast<int>(paxos.status())],
        paxos.ballot().round, paxos.ballot().node, paxos.promised().round, paxos.promised().node,
        paxos.leader(), paxos.decided_through(), paxos.compacted_through(),
        participant->app().applied(), paxos.pending_proposals(), participant->pending_outputs(),
        paxos.holds_lease(), stats.elections_won, stats.elections_started, stats.forwards_dropped,
        describe_schedule(paxos.schedule()));
  }
  return text;
}

void Simulation::send(ParticipantId from, ParticipantId to, Payload payload) {
  if (const auto* phaser = std::get_if<PhaserPacket>(&payload); phaser && _phaser_layer) {
    _phaser_layer->sent(*phaser);
  }
  _network.send(_now, from, to, std::move(payload));
}

void Simulation::booted(ParticipantId node, const consensus::Snapshot& recovered) {
  _trace.event(_now, "boot", node, recovered.slot);
  if (_trace.verbose()) {
    const consensus::Durable& image = this->node(node).disk().image().paxos;
    std::string accepted;
    for (const auto& [slot, entry] : image.accepted) {
      accepted += fmt::format(" {}@{}.{}", slot, entry.ballot.round, entry.ballot.node);
    }
    _trace.note(_now, fmt::format("boot {}: boots={} promised={}.{} snapshot={} accepted:{}", node,
                                  image.boots, image.promised.round, image.promised.node,
                                  image.snapshot.slot, accepted));
  }
  for (auto& checker : _checkers) checker->on_boot(*this, node, recovered);
}

void Simulation::learned(ParticipantId node, const consensus::Decided& decided) {
  _trace.event(_now, "learn", node, decided.slot, digest_entry(decided.entry));
  if (_trace.verbose()) {
    const auto& id = decided.entry.id;
    _trace.note(_now, fmt::format("node {} learned slot {} = {}/{}/{}", node, decided.slot,
                                  id.proposer, id.boot, id.sequence));
  }
  for (auto& checker : _checkers) checker->on_learn(*this, node, decided);
}

void Simulation::proposed(ParticipantId node, const consensus::Entry& entry) {
  note_proposal(node, entry);
  if (_proposal_tap) _proposal_tap(node, entry, true);
}

// The proposer is down already.
void Simulation::proposed_unreleased(ParticipantId node, const consensus::Entry& entry) {
  note_proposal(node, entry);
  if (_proposal_tap) _proposal_tap(node, entry, false);
}

void Simulation::note_proposal(ParticipantId node, const consensus::Entry& entry) {
  _trace.event(_now, "propose", node, entry.id.proposer, entry.id.boot, entry.id.sequence,
               digest_bytes(entry.value));
  if (_trace.verbose()) {
    const auto decoded = consensus::decode_entry(entry.value);
    _trace.note(_now, fmt::format("host {} proposed {}/{}/{}: {}{}", node, entry.id.proposer,
                                  entry.id.boot, entry.id.sequence,
                                  decoded ? consensus::describe(*decoded) : "?",
                                  entry.reconfigures() ? " (reconfiguration)" : ""));
  }
  for (auto& checker : _checkers) checker->on_propose(*this, node, entry.id, entry.value);
  if (_membership != nullptr) _membership->on_proposed(entry);
}

void Simulation::withdrawn(ParticipantId node, const consensus::ProposalId& id) {
  for (auto& checker : _checkers) checker->on_withdraw(*this, node, id);
}

void Simulation::applied(ParticipantId node) {
  for (auto& checker : _checkers) checker->on_applied(*this, node);
}

std::string Simulation::describe_member(const Participant& participant) const {
  const consensus::MembershipNode& node = participant.member().node();
  if (!node.has_paxos()) {
    return fmt::format("  host {} boot {}: arriving nonce={}.{} refused={} exited={}\n",
                       participant.id(), participant.incarnation(), node.nonce().data_dir,
                       node.nonce().incarnation, node.refused().value_or("-"), node.exited());
  }
  const consensus::Paxos& paxos = node.paxos();
  static constexpr const char* statuses[] = {"follower", "candidate", "leader"};
  return fmt::format(
      "  host {} boot {} id {}: {} ballot={}.{} promised={}.{} leader={} decided={} applied={} "
      "compacted={} lease={}/{} read_lease={} recovering={} stuck={} retiring={} votes={} "
      "members={} schedule={} pending={} outputs={}\n",
      participant.id(), participant.incarnation(), node.id(),
      statuses[static_cast<int>(paxos.status())], paxos.ballot().round, paxos.ballot().node,
      paxos.promised().round, paxos.promised().node, paxos.leader(), paxos.decided_through(),
      node.state().applied(), paxos.compacted_through(), paxos.holds_lease(),
      node.grants_leases(), node.holds_read_lease(), node.recovering(), node.stuck(),
      node.retiring(), paxos.votes(),
      node.state().members().size(), describe_schedule(paxos.schedule()),
      paxos.pending_proposals(), participant.pending_outputs());
}

void Simulation::installed(ParticipantId node, const consensus::Snapshot& snapshot) {
  _trace.event(_now, "install", node, snapshot.slot);
  _trace.note(_now, fmt::format("node {} installed snapshot at {}", node, snapshot.slot));
  for (auto& checker : _checkers) checker->on_install(*this, node, snapshot);
}

}  // namespace coworker::sim

namespace coworker::sim {

void Simulation::phaser_reply(ParticipantId node, const consensus::Reply& reply) {
  if (_phaser_layer != nullptr) _phaser_layer->reply(node, reply);
}

void Simulation::phaser_committed(ParticipantId node, const consensus::Write& write) {
  if (_phaser_layer != nullptr) _phaser_layer->leader_committed(node, write);
}

void Simulation::phaser_repair(ParticipantId node, uint32_t bucket) {
  if (_phaser_layer != nullptr) _phaser_layer->repair(node, bucket);
}

}  // namespace coworker::sim
