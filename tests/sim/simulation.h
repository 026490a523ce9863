// Simulation: a deterministic cluster of simulated participants — the
// framework every consensus test and the coworker-sim swarm run on.
//
// One Simulation per seed (or per test), single-threaded, owning its
// participants, network, checkers and Prng; it borrows the Trace. Logical
// time advances only in step(), one tick at a time, in a fixed order:
//   1. every live participant ticks: its disk completes due batches, the
//      outputs those release go out, then its state machines' on_tick();
//   2. the network delivers every packet due by now, in (tick, sequence)
//      order, to live participants (a packet for a crashed one is lost);
//   3. every checker runs after_tick().
// Scenario code (tests, swarm families) acts between steps: proposals,
// crashes, restarts, partitions. Given the seed and those actions, every run
// is the same on every build: no clock, no threads, no unordered iteration.
//
//   sim.propose(1, "x");  sim.crash(1);  sim.run(200);
//   CHECK(sim.leader() != 1);  CHECK(!sim.violated());
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "consensus/paxos.h"
#include "consensus/prng.h"
#include "tests/sim/checker.h"
#include "tests/sim/network.h"
#include "tests/sim/participant.h"
#include "tests/sim/trace.h"

namespace coworker::sim {

struct SimOptions {
  uint32_t participants = 3;  // ids 1..participants (membership mode: hosts)
  uint32_t voters = 3;        // ids 1..voters vote, the rest learn (Paxos mode)
  consensus::Paxos::Timing timing;
  consensus::Paxos::Limits limits;
  NetworkOptions network;
  DiskOptions disk;
  Slot snapshot_interval = 0;
  // Clock rates (issue 19 point 5): each participant's clock runs at
  // 1 ± up to this many millionths of the simulation's, drawn per
  // participant with a phase from a stream of its own (participant.h,
  // set_clock). 0: every clock at one rate.
  uint32_t clock_drift_ppm = 0;
  // Set: membership mode (participant.h). Static start boots hosts
  // 1..static_members as members; otherwise only host 1 (it bootstraps) —
  // the scenario boots the others with restart() when they are to arrive.
  std::optional<MembershipSimOptions> membership;
  // Set (with a static membership start): the members host phasers, and a
  // PhaserLayer plays their clients and checks them (phaser_layer.h).
  std::optional<PhaserStackOptions> phasers;
};

class MembershipChecker;
class PhaserLayer;

class Simulation final : public Effects {
 public:
  // More packets in flight than this is a message storm: a violation (a
  // protocol that amplifies its own traffic would otherwise eat the memory).
  static constexpr size_t in_flight_max = 100000;

  // Boots every participant and installs the standard checkers.
  Simulation(uint64_t seed, const SimOptions& options, Trace& trace);
  Simulation(const Simulation&) = delete;
  Simulation& operator=(const Simulation&) = delete;
  ~Simulation();

  uint64_t seed() const { return _seed; }
  Tick now() const { return _now; }
  size_t size() const { return _participants.size(); }
  Participant& node(ParticipantId id);
  const Participant& node(ParticipantId id) const;
  Network& network() { return _network; }
  consensus::Prng& prng() { return _prng; }
  Trace& trace() { return _trace; }
  const ParticipantOptions& participant_options() const { return _participant_options; }

  void step();
  void run(Tick ticks);
  // Steps until done() holds (true) or max_ticks pass (false); stops early
  // on a violation.
  bool run_until(const std::function<bool()>& done, Tick max_ticks);

  // With `voters`: a reconfiguration (paxos.h step 12) replacing the
  // proposer's latest scheduled voters.
  std::optional<consensus::ProposalId> propose(ParticipantId at, std::string value,
                                               const std::vector<ParticipantId>* voters = nullptr);
  void crash(ParticipantId id);
  // Membership mode: it left gracefully, departed and exited (until restarted).
  bool exited(ParticipantId id) const { return _exited.at(id); }
  // Membership mode: a call into a participant's node, between steps.
  void act(ParticipantId id,
           const std::function<consensus::MembershipOutput(consensus::MembershipNode&)>& call) {
    node(id).act(_now, call);
  }
  void restart(ParticipantId id);
  // Delivers a crafted message next tick, past every fault (tests only).
  void inject(ParticipantId from, ParticipantId to, consensus::Message message);

  // Sees every packet delivered, before its receiver does (tests only).
  void tap(std::function<void(const Packet&)> observer) { _tap = std::move(observer); }
  // Sees every proposal a participant makes, as it makes it (fault drivers);
  // `released` false: the proposer crashed before releasing it (its disk
  // may keep it, to be decided after its restart).
  void on_proposed(std::function<void(ParticipantId, const consensus::Entry&, bool released)> observer) {
    _proposal_tap = std::move(observer);
  }

  // The live participant leading with the highest ballot, or 0.
  ParticipantId leader() const;

  void add_checker(std::unique_ptr<Checker> checker);
  void violate(std::string_view checker, std::string message);
  bool violated() const { return !_violation.empty(); }
  const std::string& violation() const { return _violation; }
  // Why the cluster has not settled (liveness), or nothing.
  std::optional<std::string> unsettled() const;
  // Steps until settled or max_ticks pass; a cluster that never settles is a
  // violation ("liveness: ...").
  bool settle(Tick max_ticks);

  // One line per participant: status, ballot, promise, decided prefix,
  // pending proposals (for verbose runs and failing tests).
  std::string describe_state() const;

  const AgreementChecker& agreement() const { return *_agreement; }
  const ProposalChecker& proposals() const { return *_proposals; }
  const MembershipChecker* membership() const { return _membership; }
  PhaserLayer* phasers() { return _phaser_layer; }

  // Effects: what participants' released outputs do.
  void send(ParticipantId from, ParticipantId to, Payload payload) override;
  void booted(ParticipantId node, const consensus::Snapshot& recovered) override;
  void learned(ParticipantId node, const consensus::Decided& decided) override;
  void installed(ParticipantId node, const consensus::Snapshot& snapshot) override;
  void proposed(ParticipantId node, const consensus::Entry& entry) override;
  void withdrawn(ParticipantId node, const consensus::ProposalId& id) override;
  void proposed_unreleased(ParticipantId node, const consensus::Entry& entry) override;
  void applied(ParticipantId node) override;
  void phaser_reply(ParticipantId node, const consensus::Reply& reply) override;
  void phaser_committed(ParticipantId node, const consensus::Write& write) override;
  void phaser_repair(ParticipantId node, uint32_t bucket) override;

 private:
  void deliver(Packet& packet);
  void note_proposal(ParticipantId node, const consensus::Entry& entry);
  void start_membership(const SimOptions& options);
  std::string describe_member(const Participant& participant) const;

  const uint64_t _seed;
  Trace& _trace;
  consensus::Prng _prng;  // the network's draws
  std::optional<MembershipSimOptions> _membership_options;  // the participants point here
  std::optional<PhaserStackOptions> _phaser_options;         // likewise
  ParticipantOptions _participant_options;
  Network _network;
  std::vector<std::unique_ptr<Participant>> _participants;  // [id - 1]
  std::vector<std::unique_ptr<Checker>> _checkers;
  AgreementChecker* _agreement = nullptr;
  ProposalChecker* _proposals = nullptr;
  MembershipChecker* _membership = nullptr;
  PhaserLayer* _phaser_layer = nullptr;
  std::function<void(const Packet&)> _tap;
  std::function<void(ParticipantId, const consensus::Entry&, bool)> _proposal_tap;
  Tick _now = 0;
  std::string _violation;
  std::vector<bool> _exited;  // by host
};

}  // namespace coworker::sim
