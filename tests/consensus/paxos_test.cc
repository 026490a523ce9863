// Paxos scenarios over the simulator: each path of consensus/paxos.h on its
// own, in a calm cluster unless the story needs a fault. Every scenario also
// runs the simulator's checkers (agreement, prefixes, validity, lease)
// after every step, so CHECK(!sim.violated()) guards each of them.
#include <doctest/doctest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "tests/sim/simulation.h"

using namespace coworker;
using namespace coworker::sim;
using consensus::Ballot;
using consensus::ParticipantId;

namespace {

SimOptions calm(uint32_t participants, uint32_t voters) {
  SimOptions options;
  options.participants = participants;
  options.voters = voters;
  options.network.delay_min = 1;
  options.network.delay_max = 2;
  return options;
}

ParticipantId elect(Simulation& sim) {
  REQUIRE(sim.run_until([&] { return sim.leader() != 0; }, 1000));
  return sim.leader();
}

// Cuts a participant off from everyone, both ways, until `until`.
void isolate(Simulation& sim, ParticipantId id, Tick until) {
  for (ParticipantId other = 1; other <= sim.size(); other++) {
    if (other == id) continue;
    sim.network().block(id, other, until);
    sim.network().block(other, id, until);
  }
}

size_t leaders(const Simulation& sim) {
  size_t count = 0;
  for (ParticipantId id = 1; id <= sim.size(); id++) {
    if (sim.node(id).up() && sim.node(id).paxos().leading()) count++;
  }
  return count;
}

}  // namespace

TEST_CASE("paxos: election: three voters elect one leader and decide every proposal") {
  Trace trace(false);
  Simulation sim(1, calm(3, 3), trace);
  const ParticipantId leader = elect(sim);
  for (int i = 0; i < 20; i++) REQUIRE(sim.propose(1 + i % 3, "value " + std::to_string(i)));
  REQUIRE(sim.settle(2000));
  CHECK(sim.proposals().acked() == 20);
  CHECK(sim.proposals().duplicates() == 0);
  CHECK(sim.leader() == leader);
  CHECK(leaders(sim) == 1);
  CHECK(sim.node(leader).paxos().holds_lease());
  for (ParticipantId id = 1; id <= 3; id++) {
    CHECK(sim.node(id).paxos().decided_through() == sim.agreement().highest_decided());
    CHECK(sim.node(id).app().chain() == sim.node(leader).app().chain());
  }
  CHECK(!sim.violated());
}

TEST_CASE("paxos: election: a single voter leads alone and two learners follow") {
  Trace trace(false);
  Simulation sim(2, calm(3, 1), trace);
  CHECK(elect(sim) == 1);
  for (int i = 0; i < 10; i++) REQUIRE(sim.propose(1 + i % 3, "solo " + std::to_string(i)));
  REQUIRE(sim.settle(2000));
  CHECK(sim.proposals().acked() == 10);
  CHECK(sim.node(3).paxos().decided_through() == sim.node(1).paxos().decided_through());
  CHECK(!sim.violated());
}

TEST_CASE("paxos: failover: leader crashes in the middle of phase 2, the next keeps the value") {
  Trace trace(false);
  Simulation sim(3, calm(3, 3), trace);
  const ParticipantId old_leader = elect(sim);
  const ParticipantId keeper = old_leader % 3 + 1;  // will accept the value
  const ParticipantId other = keeper % 3 + 1;       // will never see it
  REQUIRE(other != old_leader);
  // The value reaches `keeper` only, and its Accepted never returns: the old
  // leader cannot decide it, but a majority-of-one acceptor holds it.
  sim.network().block(old_leader, other, 100000);
  sim.network().block(keeper, old_leader, 100000);
  const auto id = sim.propose(old_leader, "in flight");
  REQUIRE(id);
  const auto holds = [&] {
    for (const auto& [slot, accepted] : sim.node(keeper).disk().image().paxos.accepted) {
      if (accepted.entry.id == *id) return true;
    }
    return false;
  };
  REQUIRE(sim.run_until(holds, 200));
  CHECK(!sim.proposals().decided(*id));
  sim.crash(old_leader);
  sim.network().heal();
  // The new leader's phase 1 finds the value with `keeper` and decides it,
  // though nobody owes it any more (its proposer crashed).
  CHECK(sim.run_until([&] { return sim.proposals().decided(*id); }, 2000));
  CHECK(sim.agreement().reference(1) != nullptr);
  CHECK(sim.agreement().reference(1)->id == *id);
  CHECK(sim.leader() != old_leader);
  sim.restart(old_leader);
  REQUIRE(sim.settle(3000));
  CHECK(!sim.violated());
}

TEST_CASE("paxos: election: dueling proposers converge on one leader") {
  Trace trace(false);
  SimOptions options = calm(5, 5);
  options.network.delay_max = 1;
  options.timing.election_jitter_ticks = 0;  // every follower times out together
  Simulation sim(4, options, trace);
  const ParticipantId first = elect(sim);
  REQUIRE(sim.propose(first, "before"));
  REQUIRE(sim.settle(1000));
  sim.crash(first);
  bool dueled = false;
  const auto candidates = [&] {
    size_t count = 0;
    for (ParticipantId id = 1; id <= 5; id++) {
      if (sim.node(id).up() &&
          sim.node(id).paxos().status() == consensus::Paxos::Status::candidate) {
        count++;
      }
    }
    if (count >= 2) dueled = true;
    return sim.leader() != 0;
  };
  REQUIRE(sim.run_until(candidates, 2000));
  CHECK(dueled);
  const ParticipantId second = sim.leader();
  CHECK(second != first);
  REQUIRE(sim.propose(second, "after"));
  REQUIRE(sim.settle(2000));
  CHECK(leaders(sim) == 1);
  CHECK(sim.proposals().acked() == 2);
  CHECK(!sim.violated());
}

TEST_CASE("paxos: recovery: acceptor restarts with promised ballot") {
  Trace trace(false);
  SimOptions options = calm(3, 3);
  options.disk.latency_min = 1;
  options.disk.latency_max = 3;
  Simulation sim(5, options, trace);
  const ParticipantId leader = elect(sim);
  REQUIRE(sim.propose(leader, "kept"));
  REQUIRE(sim.settle(1000));
  const ParticipantId voter = leader % 3 + 1;
  const Ballot promised = sim.node(voter).paxos().promised();
  CHECK(promised == sim.node(leader).paxos().ballot());

  sim.crash(voter);
  sim.restart(voter);
  CHECK(sim.node(voter).paxos().promised() == promised);
  // A message of an older ballot, as a deposed leader would send it, is
  // refused after the restart exactly as before it.
  const Ballot older{promised.round - 1, leader};
  bool refused = false;
  sim.tap([&](const Packet& packet) {
    const auto* reject =
        std::get_if<consensus::Reject>(&std::get<consensus::Message>(packet.payload));
    if (reject != nullptr && packet.from == voter && reject->ballot == older) refused = true;
  });
  const consensus::Entry stale{{leader, 99, 1}, "stale"};
  sim.inject(leader, voter, consensus::Accept{older, 0, {{100, stale}}});
  sim.inject(leader, voter, consensus::Prepare{older, 1});
  sim.run(20);
  CHECK(refused);
  CHECK(sim.node(voter).disk().image().paxos.accepted.count(100) == 0);
  CHECK(sim.node(voter).paxos().promised() == promised);
  REQUIRE(sim.settle(1000));
  CHECK(!sim.violated());
}

TEST_CASE("paxos: durability: a promise leaves only once it is on disk") {
  Trace trace(false);
  SimOptions options = calm(3, 3);
  options.disk.latency_min = 5;
  options.disk.latency_max = 5;
  Simulation sim(6, options, trace);
  // Past the boot grace, before any election: nobody binds node 1.
  sim.run(options.timing.lease_ticks + 1);
  REQUIRE(sim.leader() == 0);
  bool promised = false;
  sim.tap([&](const Packet& packet) {
    if (std::holds_alternative<consensus::Promised>(std::get<consensus::Message>(packet.payload))) {
      promised = true;
    }
  });
  const Ballot ballot{50, 2};
  sim.inject(2, 1, consensus::Prepare{ballot, 1});
  sim.run(2);
  CHECK(sim.node(1).paxos().promised() == ballot);            // decided in memory...
  CHECK(sim.node(1).disk().image().paxos.promised < ballot);  // ...not yet on disk
  CHECK(sim.node(1).pending_outputs() > 0);
  CHECK(!promised);  // so the Promised is held back
  sim.crash(1);
  sim.restart(1);
  CHECK(sim.node(1).paxos().promised() < ballot);  // the promise never existed
  sim.run(3);
  CHECK(!promised);
  CHECK(!sim.violated());
}

TEST_CASE("paxos: catch-up: a lagging learner catches up by snapshot") {
  Trace trace(false);
  SimOptions options = calm(4, 3);
  options.snapshot_interval = 5;
  options.limits.retain_slots = 2;
  options.limits.batch_entries_max = 4;
  Simulation sim(7, options, trace);
  const ParticipantId leader = elect(sim);
  isolate(sim, 4, sim.now() + 100000);
  for (int i = 0; i < 60; i++) REQUIRE(sim.propose(leader, "while away " + std::to_string(i)));
  REQUIRE(sim.run_until([&] { return sim.node(leader).paxos().decided_through() >= 60; }, 3000));
  CHECK(sim.node(4).paxos().decided_through() < 5);
  CHECK(sim.node(leader).paxos().compacted_through() >= 50);
  sim.network().heal();
  REQUIRE(sim.settle(3000));
  CHECK(sim.node(4).paxos().stats().snapshots_installed >= 1);
  CHECK(sim.node(4).paxos().decided_through() == sim.node(leader).paxos().decided_through());
  CHECK(sim.node(4).app().chain() == sim.node(leader).app().chain());
  CHECK(!sim.violated());
}

TEST_CASE("paxos: catch-up: a lagging voter catches up from the log tail") {
  Trace trace(false);
  SimOptions options = calm(3, 3);
  options.snapshot_interval = 50;
  options.limits.retain_slots = 40;
  Simulation sim(8, options, trace);
  const ParticipantId leader = elect(sim);
  const ParticipantId lagging = leader % 3 + 1;
  isolate(sim, lagging, sim.now() + 100000);
  for (int i = 0; i < 20; i++) REQUIRE(sim.propose(leader, "tail " + std::to_string(i)));
  REQUIRE(sim.run_until([&] { return sim.node(leader).paxos().decided_through() >= 20; }, 3000));
  sim.network().heal();
  REQUIRE(sim.settle(3000));
  CHECK(sim.node(lagging).paxos().stats().snapshots_installed == 0);
  CHECK(sim.node(lagging).paxos().decided_through() == sim.node(leader).paxos().decided_through());
  CHECK(!sim.violated());
}

TEST_CASE("paxos: lease: a partitioned voter does not disturb a healthy leader") {
  Trace trace(false);
  Simulation sim(9, calm(3, 3), trace);
  const ParticipantId leader = elect(sim);
  const Ballot ballot = sim.node(leader).paxos().ballot();
  const ParticipantId loner = leader % 3 + 1;
  isolate(sim, loner, sim.now() + 400);
  sim.run(400);
  CHECK(sim.node(loner).paxos().stats().elections_started >= 2);  // it tried, alone
  sim.run(400);  // and keeps trying to the healed cluster for a while
  CHECK(sim.leader() == leader);
  CHECK(sim.node(leader).paxos().ballot() == ballot);
  for (ParticipantId id = 1; id <= 3; id++) CHECK(sim.node(id).paxos().promised() == ballot);
  CHECK(sim.node(loner).paxos().leader() == leader);
  CHECK(!sim.violated());
}

TEST_CASE("paxos: lease: a silent leader is replaced by a higher ballot after its lease") {
  Trace trace(false);
  Simulation sim(10, calm(5, 5), trace);
  const ParticipantId old_leader = elect(sim);
  const Ballot old_ballot = sim.node(old_leader).paxos().ballot();
  isolate(sim, old_leader, sim.now() + 1000);
  REQUIRE(sim.run_until([&] { return sim.leader() != 0 && sim.leader() != old_leader; }, 1000));
  const ParticipantId next = sim.leader();
  CHECK(sim.node(next).paxos().ballot() > old_ballot);
  // The lease checker ran every tick: the two leases never overlapped.
  REQUIRE(sim.run_until([&] { return !sim.node(old_leader).paxos().leading(); }, 1000));
  sim.network().heal();
  REQUIRE(sim.propose(old_leader, "via the new leader"));
  REQUIRE(sim.settle(2000));
  CHECK(sim.leader() == next);
  CHECK(!sim.violated());
}

TEST_CASE("paxos: proposals: a proposal made at a learner is forwarded and decided once") {
  Trace trace(false);
  Simulation sim(11, calm(5, 3), trace);
  elect(sim);
  const auto id = sim.propose(5, "from a learner");
  REQUIRE(id);
  REQUIRE(sim.settle(1000));
  CHECK(sim.proposals().decided(*id));
  CHECK(sim.proposals().duplicates() == 0);
  CHECK(sim.node(5).paxos().pending_proposals() == 0);
  CHECK(!sim.violated());
}

TEST_CASE("paxos: reconfiguration: new voters govern α slots later, then the old may go") {
  Trace trace(false);
  SimOptions options = calm(5, 3);
  options.limits.window_slots_max = 4;
  Simulation sim(11, options, trace);
  const ParticipantId leader = elect(sim);
  sim.run(options.timing.lease_ticks);
  const std::vector<ParticipantId> voters{3, 4, 5};
  REQUIRE(sim.propose(leader, "to 3 4 5", &voters));
  REQUIRE(sim.settle(3000));
  sim.run(100);  // the noop fill that brings the change into force
  // Decided at some slot s, the change governs s + α on; the leader filled
  // the slots up to it, so it is in force everywhere.
  for (ParticipantId id = 1; id <= 5; id++) {
    const consensus::Paxos& paxos = sim.node(id).paxos();
    CHECK(paxos.latest_voters() == voters);
    CHECK(paxos.voters_for(paxos.decided_through() + 1) == voters);
  }
  CHECK(sim.node(sim.leader()).paxos().votes());
  // The old voters 1 and 2 are not needed any more.
  if (sim.node(1).up()) sim.crash(1);
  if (sim.node(2).up()) sim.crash(2);
  for (int i = 0; i < 5; i++) REQUIRE(sim.propose(3 + i % 3, "after " + std::to_string(i)));
  REQUIRE(sim.run_until(
      [&] { return sim.leader() >= 3 && sim.proposals().acked() == 6; }, 3000));
  CHECK(!sim.violated());
}

TEST_CASE("paxos: reconfiguration: a stale change (its replaced voters moved on) is void") {
  Trace trace(false);
  SimOptions options = calm(5, 3);
  options.limits.window_slots_max = 4;
  Simulation sim(12, options, trace);
  const ParticipantId leader = elect(sim);
  sim.run(options.timing.lease_ticks);
  const std::vector<ParticipantId> first{1, 2, 4};
  const std::vector<ParticipantId> second{1, 2, 5};
  // Both replace {1,2,3}: whichever is decided second is void.
  REQUIRE(sim.propose(leader, "first", &first));
  REQUIRE(sim.propose(leader, "second", &second));
  REQUIRE(sim.settle(3000));
  const consensus::Paxos& paxos = sim.node(leader).paxos();
  CHECK(paxos.latest_voters() == first);
  CHECK(paxos.stats().reconfigurations == 1);
  CHECK(paxos.stats().reconfigurations_void == 1);
  CHECK(!sim.violated());
}

// Seed 108536 of member-churn, staged: a leader keeps leading an old
// configuration whose slots are all decided, while the new one elects a
// lower ballot (its voters restarted and never promised the higher one).
// The new leader's lease must bind the voter it acked: the old leader's
// heartbeats reach that voter, which follows the higher ballot from then
// on, but must not promise it (nor count towards its lease) while the new
// leader's lease runs (paxos.h steps 2 and 14). Before, the voter promised
// at the old leader's next Prepare, and two leases ran at once.
TEST_CASE("paxos: lease: a lower ballot leading a new configuration keeps its voters bound") {
  Trace trace(false);
  SimOptions options = calm(5, 3);
  options.limits.window_slots_max = 4;
  // It keeps leading without the new voters' acks (the leader timeout of
  // the seed was 193 ticks).
  options.timing.leader_timeout_ticks = 5000;
  Simulation sim(13, options, trace);
  // A leader of round 2 at least: the first one is cut off.
  const ParticipantId first = elect(sim);
  isolate(sim, first, sim.now() + 200);
  REQUIRE(sim.run_until([&] { return sim.leader() != 0 && sim.leader() != first; }, 1000));
  const ParticipantId old_leader = sim.leader();
  REQUIRE(sim.node(old_leader).paxos().ballot().round >= 2);
  sim.network().heal();
  sim.run(options.timing.lease_ticks);
  // The new voters {old leader, 4, 5} never hear the old leader again.
  const Tick long_ = sim.now() + 100000;
  for (ParticipantId learner : {ParticipantId{4}, ParticipantId{5}}) {
    sim.network().block(old_leader, learner, long_);
    sim.network().block(learner, old_leader, long_);
  }
  std::vector<ParticipantId> voters{old_leader, 4, 5};
  std::sort(voters.begin(), voters.end());
  REQUIRE(sim.propose(old_leader, "to the old leader, 4 and 5", &voters));
  // Decided, with the slots before the change filled, by the old voters.
  const auto in_force = [&](ParticipantId id) {
    const consensus::Paxos& paxos = sim.node(id).paxos();
    return paxos.voters_for(paxos.decided_through() + 1) == voters;
  };
  REQUIRE(sim.run_until([&] { return in_force(old_leader); }, 2000));
  CHECK(sim.node(old_leader).paxos().leading());
  // 4 and 5 forget the round they heard (they never promised it), learn
  // the log from the others, and elect one of them at round 1.
  sim.crash(4);
  sim.crash(5);
  sim.restart(4);
  sim.restart(5);
  REQUIRE(sim.run_until([&] { return in_force(4) && in_force(5); }, 3000));
  // No Reject from the old voters tells them of the higher round.
  const auto mute_old_voters = [&] {
    for (ParticipantId id = 1; id <= 3; id++) {
      if (id == old_leader) continue;
      for (ParticipantId learner : {ParticipantId{4}, ParticipantId{5}}) {
        sim.network().block(learner, id, long_);
      }
    }
  };
  mute_old_voters();
  const auto new_leader = [&]() -> ParticipantId {
    for (ParticipantId id : {ParticipantId{4}, ParticipantId{5}}) {
      if (sim.node(id).paxos().holds_lease()) return id;
    }
    return 0;
  };
  REQUIRE(sim.run_until([&] { return new_leader() != 0; }, 3000));
  const ParticipantId lower = new_leader();
  const ParticipantId follower = lower == 4 ? 5 : 4;
  CHECK(sim.node(lower).paxos().ballot() < sim.node(old_leader).paxos().ballot());
  CHECK(sim.node(old_leader).paxos().leading());
  // The old leader reaches the follower again: it follows the higher
  // ballot and acks it, but the lower one's lease still binds it.
  sim.network().heal();
  sim.network().block(old_leader, lower, long_);
  sim.network().block(lower, old_leader, long_);
  mute_old_voters();
  sim.run(4 * options.timing.lease_ticks);
  CHECK_MESSAGE(!sim.violated(), sim.violation());
  // Healed, the lower leader hears the higher ballot and steps down; one
  // leader covers the new voters and decides.
  sim.network().heal();
  REQUIRE(sim.propose(follower, "after"));
  REQUIRE(sim.settle(5000));
  CHECK_MESSAGE(!sim.violated(), sim.violation());
}
