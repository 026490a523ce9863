// Membership scenarios over the simulator, one story each, in a calm
// network unless the story needs a fault. Every scenario also runs the
// checkers (agreement, schedule, membership: tables equal per prefix, no
// empty government, nonces decided once, voters by the rule, no departure
// under a lease) after every step, so CHECK(!sim.violated()) guards them.
#include <doctest/doctest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "tests/sim/membership_checker.h"
#include "tests/sim/scenario.h"
#include "tests/sim/simulation.h"

using namespace coworker;
using namespace coworker::sim;
using consensus::ParticipantId;

namespace {

SimOptions members(uint32_t hosts, uint32_t static_members, uint32_t buckets = 16) {
  SimOptions options;
  options.participants = hosts;
  options.voters = 1;
  options.network.delay_min = 1;
  options.network.delay_max = 2;
  options.limits.window_slots_max = 8;
  MembershipSimOptions membership;
  membership.params.buckets = buckets;
  membership.static_members = static_members;
  membership.executor_race_per_mille = 0;
  options.membership = membership;
  return options;
}

const consensus::MembershipNode& node(const Simulation& sim, ParticipantId host) {
  return sim.node(host).member().node();
}

// The arrival id the host has now (0: none).
ParticipantId id_of(const Simulation& sim, ParticipantId host) {
  return sim.node(host).has_paxos() ? node(sim, host).id() : 0;
}

// Cuts every link of `host` in both directions until `until`.
void isolate(Simulation& sim, ParticipantId host, Tick until) {
  for (ParticipantId other = 1; other <= sim.size(); other++) {
    if (other == host) continue;
    sim.network().block(host, other, until);
    sim.network().block(other, host, until);
  }
}

}  // namespace

TEST_CASE("membership: growth: one participant bootstraps, four arrive, targets are reached") {
  Trace trace(false);
  Simulation sim(1, members(5, 0), trace);
  for (ParticipantId host = 2; host <= 5; host++) {
    sim.run(30);
    sim.restart(host);
  }
  REQUIRE(sim.settle(5000));
  const MembershipChecker& checker = *sim.membership();
  CHECK(checker.counts().arrivals == 5);
  CHECK(checker.state().ids().size() == 5);
  CHECK(checker.state().rule_voters().size() == 5);
  CHECK(node(sim, 1).id() == 1);  // the bootstrap is slot 1
  for (ParticipantId host = 1; host <= 5; host++) {
    CHECK(node(sim, host).holds_read_lease());
    CHECK(sim.node(host).member().table().digest() == checker.table().digest());
  }
  for (uint32_t b = 0; b < 16; b++) {
    CHECK(checker.table().current(b).replicas == checker.table().target(b));
    CHECK(checker.table().current(b).replicas.size() == 3);
  }
  CHECK(!sim.violated());
}

TEST_CASE("membership: arrival: other cluster parameters are refused with the reason") {
  Trace trace(false);
  SimOptions options = members(3, 2);
  options.membership->foreign_host = 3;
  options.membership->foreign_buckets = 32;
  Simulation sim(2, options, trace);
  sim.restart(3);
  REQUIRE(sim.settle(3000));
  REQUIRE(node(sim, 3).refused().has_value());
  CHECK(node(sim, 3).refused()->find("16 buckets") != std::string::npos);
  CHECK(sim.membership()->state().ids().size() == 2);
  CHECK(!sim.violated());
}

TEST_CASE("membership: arrival: a newcomer that does not know the cluster id takes the cluster's") {
  Trace trace(false);
  SimOptions options = members(3, 2);
  options.membership->foreign_host = 3;
  options.membership->foreign_cluster = 0;  // joined by address only
  Simulation sim(2, options, trace);
  sim.restart(3);
  REQUIRE(sim.settle(3000));
  CHECK(!node(sim, 3).refused().has_value());
  CHECK(sim.membership()->state().ids().size() == 3);
  CHECK(node(sim, 3).state().params() == sim.membership()->state().params());
  CHECK(!sim.violated());
}

TEST_CASE("membership: arrival: another cluster id is refused") {
  Trace trace(false);
  SimOptions options = members(3, 2);
  options.membership->foreign_host = 3;
  options.membership->foreign_cluster = 0xbad;
  Simulation sim(2, options, trace);
  sim.restart(3);
  REQUIRE(sim.settle(3000));
  REQUIRE(node(sim, 3).refused().has_value());
  CHECK(sim.membership()->state().ids().size() == 2);
  CHECK(!sim.violated());
}

TEST_CASE("membership: departure: a crash is departed after the timeout, a re-arrival is new") {
  Trace trace(false);
  Simulation sim(3, members(4, 4), trace);
  REQUIRE(sim.settle(3000));
  sim.crash(3);
  REQUIRE(sim.run_until([&] { return !sim.membership()->state().is_member(3); }, 2000));
  CHECK(sim.membership()->counts().departures == 1);
  for (uint32_t b = 0; b < 16; b++) {
    const auto& replicas = sim.membership()->table().current(b).replicas;
    CHECK(std::find(replicas.begin(), replicas.end(), 3u) == replicas.end());
  }
  sim.restart(3);  // same data dir, next incarnation: a new id
  REQUIRE(sim.settle(5000));
  CHECK(id_of(sim, 3) > 4);
  CHECK(node(sim, 3).nonce().incarnation == 2);
  CHECK(sim.membership()->counts().arrivals == 1);
  CHECK(!sim.violated());
}

TEST_CASE("membership: last survivor: a government's last member is marked, not departed") {
  Trace trace(false);
  Simulation sim(4, members(7, 7), trace);
  REQUIRE(sim.settle(3000));
  // 5, 6 and 7 are neighbours in arrival order: some government is exactly
  // them. Two voters (1..5 vote) of five may go.
  sim.crash(5);
  sim.crash(6);
  sim.crash(7);
  REQUIRE(sim.settle(8000));
  const MembershipChecker& checker = *sim.membership();
  CHECK(checker.counts().departures == 2);
  CHECK(checker.counts().marks == 1);
  ParticipantId marked = 0;
  for (const auto& [id, member] : checker.state().members()) {
    if (member.status == consensus::MemberStatus::unreachable) marked = id;
  }
  REQUIRE(marked != 0);
  CHECK(checker.table().sole_member(marked));
  CHECK(checker.state().rule_voters() == std::vector<ParticipantId>{1, 2, 3});
  CHECK(!sim.violated());
}

TEST_CASE("membership: leave: the leaver leaves every target, departs holding nothing, exits") {
  Trace trace(false);
  Simulation sim(5, members(4, 4), trace);
  REQUIRE(sim.settle(3000));
  sim.act(2, [](consensus::MembershipNode& member) { return member.leave(); });
  REQUIRE(sim.run_until([&] { return sim.exited(2); }, 5000));
  CHECK(!sim.membership()->state().is_member(2));
  CHECK(sim.membership()->counts().leaves == 1);
  REQUIRE(sim.settle(3000));
  CHECK(sim.membership()->state().rule_voters() == std::vector<ParticipantId>{1, 3, 4});
  CHECK(!sim.violated());
}

TEST_CASE("membership: voters: a departed voter is replaced by the next in arrival order") {
  Trace trace(false);
  Simulation sim(6, members(6, 6), trace);
  REQUIRE(sim.settle(3000));
  const ParticipantId leader = sim.leader();
  REQUIRE(leader != 0);
  CHECK(sim.node(leader).paxos().latest_voters() == std::vector<ParticipantId>{1, 2, 3, 4, 5});
  const ParticipantId gone = leader == 2 ? 3 : 2;
  sim.crash(gone);
  REQUIRE(sim.settle(8000));
  std::vector<ParticipantId> expected{1, 2, 3, 4, 5, 6};
  expected.erase(std::find(expected.begin(), expected.end(), gone));
  CHECK(sim.node(sim.leader()).paxos().latest_voters() == expected);
  CHECK(sim.membership()->counts().reconfigurations >= 1);
  CHECK(!sim.violated());
}

TEST_CASE("membership: report: a replica its bucket leaders cannot hear is departed") {
  Trace trace(false);
  Simulation sim(7, members(4, 4), trace);
  REQUIRE(sim.settle(3000));
  const ParticipantId leader = sim.leader();
  const ParticipantId silent = leader == 4 ? 3 : 4;
  // It still talks to the membership leader (heartbeats, Paxos), to nobody
  // else: its bucket leaders report it.
  for (ParticipantId other = 1; other <= 4; other++) {
    if (other != silent && other != leader) sim.network().block(silent, other, 1000000);
  }
  REQUIRE(sim.run_until([&] { return !sim.membership()->state().is_member(silent); }, 5000));
  CHECK(!sim.violated());
}

TEST_CASE("membership: stuck: a participant whose core is stuck stops heartbeating and departs") {
  Trace trace(false);
  Simulation sim(8, members(4, 4), trace);
  REQUIRE(sim.settle(3000));
  sim.act(3, [](consensus::MembershipNode& member) { return member.set_stuck(true); });
  CHECK(!node(sim, 3).holds_read_lease());
  REQUIRE(sim.run_until([&] { return !sim.membership()->state().is_member(3); }, 3000));
  CHECK(!sim.violated());
}

TEST_CASE("membership: recovering: a member recovering past the recovery timeout departs, not before") {
  Trace trace(false);
  SimOptions options = members(4, 4);
  options.membership->timing.departure_ticks = 60;
  options.membership->timing.recovery_ticks = 300;
  Simulation sim(9, options, trace);
  REQUIRE(sim.settle(3000));
  // A restart replaying a long log (tools/coworker/beacon.h): it heartbeats,
  // saying `recovering`, and serves nothing.
  sim.act(3, [](consensus::MembershipNode& member) {
    member.set_ready(false);
    return consensus::MembershipOutput{};
  });
  // Heard all along: kept past four departure timeouts (the recovery
  // timeout counts on the leader's clock, which may run a little fast).
  CHECK(!sim.run_until([&] { return !sim.membership()->state().is_member(3); }, 250));
  REQUIRE(sim.run_until([&] { return !sim.membership()->state().is_member(3); }, 300));
  CHECK(!sim.violated());
}

TEST_CASE("membership: restart: the whole cluster restarts and keeps its members") {
  Trace trace(false);
  Simulation sim(9, members(3, 3), trace);
  REQUIRE(sim.settle(3000));
  for (ParticipantId host = 1; host <= 3; host++) sim.crash(host);
  sim.run(10);
  for (ParticipantId host = 1; host <= 3; host++) {
    sim.restart(host);
    sim.run(15);
  }
  REQUIRE(sim.settle(5000));
  CHECK(sim.membership()->counts().departures == 0);
  for (ParticipantId host = 1; host <= 3; host++) CHECK(id_of(sim, host) == host);
  CHECK(!sim.violated());
}

TEST_CASE("membership: partition: an isolated leader is departed, the others elect") {
  Trace trace(false);
  Simulation sim(10, members(5, 5), trace);
  REQUIRE(sim.settle(3000));
  const ParticipantId leader = sim.leader();
  REQUIRE(leader != 0);
  isolate(sim, leader, sim.now() + 600);
  REQUIRE(sim.run_until([&] { return !sim.membership()->state().is_member(leader); }, 3000));
  sim.network().heal();
  REQUIRE(sim.settle(8000));
  CHECK(id_of(sim, leader) > 5);  // it arrived anew
  CHECK(!sim.violated());
}

// Seeds that once failed (docs/PROTOCOL.md names each fix). The code has
// moved since, so a seed may no longer steer into the same corner; they are
// cheap and stay here as a floor, with the soak commands in
// docs/ARCHITECTURE.md as the real net.
TEST_CASE("membership: seeds that once failed run clean") {
  struct Case {
    const char* family;
    uint64_t seed;
  };
  const Case cases[] = {
      {"phaser-members", 17120},  // departed while holding a read lease: recovered hold
      {"phaser-members", 17605},
      {"phaser-members", 30027},  // the leader marked unreachable returns itself
      {"phaser-members", 19069},  // loss of 2 of 5 while a third departs (the driver)
      {"phaser-members", 9940},
      {"phaser-members", 15527},
      {"member-lost", 461},       // returns moving voters onto lost participants
      {"member-voters", 28752},   // a retiring leader keeps withholding acks
      {"member-churn", 44367},
      {"member-voters", 38335},   // ... and does not propose the removal anew
      {"member-churn", 62077},    // a snapshot that departs us ends our lease
      {"member-churn", 87207},    // every member asked to leave (the driver counts by the log)
      {"member-churn", 108536},   // a higher ballot leads an older configuration (the lease
                                  // checker; leases need promises, every leader heard binds)
      {"member-churn", 33561683},  // a late ack of an earlier boot's heartbeat (acks echo the boot)
      {"phaser-members", 26140},   // ... the same, at dd4d95b
      {"phaser-grow", 1094},      // a newcomer holds an empty write at 0 (the checker)
      {"phaser-grow", 3361},
      {"phaser-grow", 431931156},  // a departure: a re-arrived id in governments (timeouts)
      {"phaser-grow", 431931040},
      {"phaser-arrivals", 13543},  // a late ack of an earlier growth made a newcomer join
      {"phaser-rolling", 137},     // a late ack of an earlier boot's heartbeat (as 33561683)
      {"phaser-churn", 37578},     // a growth's newcomer marked unreachable for good (the
                                   // table voids migrations in flight at a mark)
      {"phaser-churn", 37490},     // a newcomer acclimated from a snapshot took a deposed
                                   // leader's write for a conflict (the snapshot now raises
                                   // its promise to the leader's)
      {"phaser-rolling", 24182},   // the same
      {"phaser-rolling", 36942},
      {"phaser-churn", 18796197},  // a returning member grown back took a write overtaking
                                   // its Catchup for damage (its view still listed it)
      {"phaser-grow", 17843},      // expiry between two writes of one attempt: the first's
                                   // resubmission was answered superseded (now expired)
      {"phaser-rolling", 5482},    // the same
      {"phaser-arrivals", 11817},
      {"phaser-rolling", 30265},
      {"phaser-churn", 32375},
      {"member-voters", 2652679960},  // a departed bootstrapper, restarted on an old state,
                                      // heartbeat a re-arrived member's old id: unanswered
      {"phaser-churn", 671497433},  // an old leadership's mark decided before our depart
                                    // ended the withholding: departed under a lease
      {"member-lost", 403445063},   // a lost voter's heartbeat, delivered 250 ticks late,
                                    // returned it and the rule made it the only voter
      {"phaser-members", 352},      // damage at rest to the only counter record: recovery
                                    // made nothing suspect (the damage probe, disk.h)
      {"phaser-repair", 944},       // a round torn between a checkpoint and its register,
      {"phaser-repair", 1937},      // that register's record damaged: nothing suspect
      {"phaser-rolling", 2035373384},  // an empty write's register record damaged under a
                                       // proven round that held no register: the round kept
                                       // the register before it (the long run, 2026-12-06)
      {"phaser-rolling", 2035370498},  // the same, a payload flip (one record, attributed)
      {"phaser-repair", 1166},         // a void last copy: its heir adopts the bucket
      {"phaser-repair", 3006027069},   // (PROTOCOL "Heirs"; 503 forever before)
      {"phaser-repair", 145460780},
      {"phaser-repair", 145469783},    // a stale ack of the copy's life before the damage
      {"phaser-repair", 1751},         // the same after the probe: believed (copy lives, 9h)
      {"phaser-repair", 1960750603},   // an old growth's probe ended a void member's repair
      {"phaser-arrivals", 1960726941},  // a forward behind a lost boot record counted as
                                        // proposed (the checker), its id then reused
      {"phaser-repair", 1346297047},   // an heir whose directory arrived anew before the
                                       // removal: its reset copy adopted (PROTOCOL "Heirs")
      {"phaser-members", 269891298},   // a reconfiguration on a basis its own removal of the
                                       // voter it named followed: no voter left (rule 4)
      {"phaser-repair", 806933991},    // an heir whose directory gave up its id at a boot
                                       // before the arrival anew was decided: a forgotten copy
                                       // adopted empty (Identity::void_through)
      {"phaser-repair", 68},           // the same, aimed (mutation 48 fails them)
      {"phaser-repair", 115},
      {"phaser-repair", 2851},         // the aimed id given up was a voter whose config had
      {"phaser-repair", 2890},         // no other active majority (the driver)
      {"phaser-arrivals", 301670893},  // a usurper's start sent before its promise was
                                       // durable (phaser.h step 5; the long run, 2026-12-07)
      {"phaser-repair", 1777382951},   // the named round's marker flipped in a retained log:
                                       // the repair's records dropped at the next restart
                                       // (recovery.h step 4b; the long run, 2026-12-07)
      {"phaser-repair", 911496683},    // damage at rest in an heir's copy whose adoption
                                       // was in flight: the bucket's only copy (the driver)
      {"phaser-rolling", 2486656372},  // an ack from before the newcomer's restart, delayed
                                       // past its offer (the stream meter; the long run)
  };
  for (const Case& c : cases) {
    const Family* family = find_family(c.family);
    REQUIRE(family != nullptr);
    const SeedResult r = run_seed(c.seed, *family, false);
    CAPTURE(c.family);
    CAPTURE(c.seed);
    CHECK_MESSAGE(!r.violated, r.violation);
  }
}
