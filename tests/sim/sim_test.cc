// The simulator itself: determinism, its fault models, and checkers that
// fire on the histories they exist to reject.
#include <doctest/doctest.h>

#include <set>
#include <string>
#include <vector>

#include "tests/sim/disk.h"
#include "tests/sim/network.h"
#include "tests/sim/scenario.h"
#include "tests/sim/simulation.h"

using namespace coworker;
using namespace coworker::sim;

TEST_CASE("sim: one seed replays the same trace, another seed does not") {
  for (const Family& family : families()) {
    const SeedResult first = run_seed(3, family, false);
    const SeedResult again = run_seed(3, family, false);
    const SeedResult other = run_seed(4, family, false);
    CHECK(first.digest == again.digest);
    CHECK(first.acked == again.acked);
    CHECK(first.digest != other.digest);
  }
}

TEST_CASE("sim: every family runs clean and makes progress on its first seeds") {
  for (const Family& family : families()) {
    uint64_t acked = 0;
    for (uint64_t seed = 0; seed < 8; seed++) {
      const SeedResult result = run_seed(seed, family, false);
      CHECK_MESSAGE(!result.violated, family.name, " seed ", seed, ": ", result.violation);
      acked += result.acked;
    }
    CHECK_MESSAGE(acked > 100, family.name);
  }
}

TEST_CASE("sim: a seed always replays its own family") {
  CHECK(families().size() >= 5);
  for (uint64_t seed = 0; seed < 20; seed++) {
    CHECK(&family_for_seed(seed) == &family_for_seed(seed + families().size()));
  }
  CHECK(find_family("paxos-takeover") != nullptr);
  CHECK(find_family("no such family") == nullptr);
}

TEST_CASE("sim: disk: a crash loses the batches not yet durable, but may keep the first whole") {
  const auto promise = [](uint64_t round) {
    return std::vector<DiskRecord>{consensus::PersistRecord{consensus::PersistPromise{{round, 1}}}};
  };
  std::set<uint64_t> recovered;
  for (uint64_t seed = 1; seed <= 64; seed++) {
    consensus::Prng prng(1);
    Disk disk(DiskOptions{3, 3}, seed);
    const Disk::Ticket first = disk.write(10, prng, promise(1));
    const Disk::Ticket joined = disk.write(10, prng, promise(2));  // same tick, same batch
    disk.write(11, prng, promise(3));
    const Disk::Ticket later = disk.write(12, prng, promise(4));
    disk.tick(12);
    CHECK(disk.durable() < first);
    disk.tick(13);
    CHECK(disk.durable() == joined);
    CHECK(disk.image().paxos.promised.round == 2);
    disk.crash();
    // Round 3's batch was being written: lost, or kept whole. Round 4's
    // waited for it, so it never reached the disk.
    const uint64_t round = disk.image().paxos.promised.round;
    CHECK((round == 2 || round == 3));
    CHECK(disk.batches_kept_at_crash() == (round == 3 ? 1u : 0u));
    recovered.insert(round);
    CHECK(disk.durable() >= later);  // nobody waits for a lost write
    disk.hang();
    const Disk::Ticket stuck = disk.write(20, prng, promise(5));
    disk.tick(100);
    CHECK(disk.durable() < stuck);
    disk.release();
    disk.tick(100);
    CHECK(disk.durable() == stuck);
  }
  CHECK(recovered == std::set<uint64_t>{2, 3});  // both fates drawn
}

TEST_CASE("sim: disk: a stuck fdatasync that fails leaves its batch in doubt, as a crash does") {
  const auto promise = [](uint64_t round) {
    return std::vector<DiskRecord>{consensus::PersistRecord{consensus::PersistPromise{{round, 1}}}};
  };
  std::set<uint64_t> recovered;
  uint64_t ok = 0;
  for (uint64_t seed = 1; seed <= 200; seed++) {
    consensus::Prng prng(1);
    Disk disk(DiskOptions{1, 1}, seed);
    disk.hang();
    CHECK(disk.end_hang() == Disk::SyncEnd::ok);  // nothing was being synced
    disk.write(10, prng, promise(1));
    disk.tick(11);
    disk.hang();
    const Disk::Ticket stuck = disk.write(20, prng, promise(2));
    disk.tick(100);
    CHECK(disk.durable() < stuck);
    if (disk.end_hang() == Disk::SyncEnd::ok) {
      ok++;
      disk.tick(100);
      CHECK(disk.durable() == stuck);
      continue;
    }
    disk.crash();  // the participant stops
    const uint64_t round = disk.image().paxos.promised.round;
    CHECK((round == 1 || round == 2));
    recovered.insert(round);
    CHECK(disk.last_crash().find("the stuck fdatasync failed") == 0);
    CHECK(disk.syncs_failed() == 1);
  }
  CHECK(ok > 0);
  CHECK(recovered == std::set<uint64_t>{1, 2});  // the stuck batch lost, or on the disk
}

TEST_CASE("sim: disk: damage at rest probed at crashes is found, and a repair keeps only intact state") {
  // Each batch: a promise for two of four buckets, now and then the counter.
  // Records accumulate below the last batch, where the probe damages a copy
  // (log_files.h step 5); a report the probe makes is a fold violation.
  uint64_t probes = 0;
  uint64_t repairs = 0;
  for (uint64_t seed = 1; seed <= 8; seed++) {
    consensus::Prng prng(seed);
    Disk disk(DiskOptions{0, 0, true}, seed);
    uint32_t counter = 0;
    for (uint64_t round = 1; round <= 60; round++) {
      std::vector<DiskRecord> records;
      for (uint32_t bucket = round % 2; bucket < 4; bucket += 2) {
        records.emplace_back(BucketRecord{
            bucket, consensus::PromiseRecord{consensus::Promise{round, static_cast<uint32_t>(seed)}}});
      }
      if (round % 7 == 0) records.emplace_back(CounterRecord{++counter});
      disk.write(round, prng, std::move(records));
      disk.tick(round);
      if (round % 5 == 0) disk.crash();
      REQUIRE(!disk.image().fold_violation.has_value());
    }
    probes += disk.damage_probes();
    repairs += disk.damage_repairs();
  }
  CHECK(probes > 20);
  CHECK(repairs > 0);
}

TEST_CASE("sim: disk: a log over many segments recovers from its rounds once the segments before them are retired") {
  // Each batch: a promise for two of four buckets; every fourth a round
  // (log_files.h step 3): its marker, the counter, each bucket's
  // checkpoint. Crashes now and then (a batch kept, torn or lost), each
  // recovery compared with the disk's own fold (a report is a fold
  // violation). The files' segment size is drawn per seed: some seeds
  // never seal.
  uint64_t sealed = 0;
  uint64_t named = 0;
  uint64_t retired = 0;
  for (uint64_t seed = 1; seed <= 12; seed++) {
    consensus::Prng prng(seed);
    Disk disk(DiskOptions{0, 1, true}, seed);
    uint32_t counter = 1;
    disk.write(0, prng, {CounterRecord{counter}});
    // What was staged, as a host knows it: a round restates it.
    std::map<uint32_t, consensus::PhaserDurable> staged;
    for (uint64_t step = 1; step <= 400; step++) {
      std::vector<DiskRecord> records;
      if (step % 4 == 0) {
        records.emplace_back(RoundMarker{});
        records.emplace_back(CounterRecord{counter});
        for (const auto& [bucket, image] : staged) {
          for (consensus::PhaserRecord& r : consensus::checkpoint_records(image)) {
            records.emplace_back(BucketRecord{bucket, std::move(r)});
          }
        }
      }
      for (uint32_t bucket = step % 2; bucket < 4; bucket += 2) {
        const consensus::PromiseRecord promise{
            consensus::Promise{step, static_cast<uint32_t>(seed)}};
        staged[bucket].apply(promise);
        records.emplace_back(BucketRecord{bucket, promise});
      }
      disk.write(step, prng, std::move(records));
      disk.tick(step);
      if (step % 37 == 0) {
        disk.crash();
        staged = disk.image().phasers;
      }
      REQUIRE(!disk.image().fold_violation.has_value());
    }
    disk.crash();
    REQUIRE(!disk.image().fold_violation.has_value());
    sealed += disk.files()->segments_sealed();
    named += disk.files()->rounds_named();
    retired += disk.files()->segments_retired();
  }
  CHECK(sealed > 20);
  CHECK(named > 100);
  CHECK(retired > 10);
}

TEST_CASE("sim: network: links stay FIFO unless reordering, partitions drop in flight") {
  consensus::Prng prng(2);
  Network network(prng, 2, NetworkOptions{0, 0, 1, 9, false});
  for (uint64_t i = 0; i < 50; i++) {
    network.send(0, 1, 2, Payload{consensus::Message{consensus::CatchUp{i}}});
  }
  std::vector<uint64_t> order;
  const auto collect = [&](const Packet& packet) {
    order.push_back(
        std::get<consensus::CatchUp>(std::get<consensus::Message>(packet.payload)).from);
  };
  network.deliver_due(100, collect);
  REQUIRE(order.size() == 50);
  for (uint64_t i = 0; i < 50; i++) CHECK(order[i] == i);

  network.send(100, 1, 2, Payload{consensus::Message{consensus::CatchUp{7}}});
  network.block(1, 2, 150);
  network.deliver_due(120, collect);
  CHECK(order.size() == 50);  // lost to the partition
  CHECK(network.stats().dropped == 1);
  network.send(200, 2, 1, Payload{consensus::Message{consensus::CatchUp{8}}});
  network.deliver_due(300, collect);
  CHECK(order.size() == 51);  // the other direction was open
}

TEST_CASE("sim: checkers: two values for one slot are a violation") {
  Trace trace(false);
  SimOptions options;
  Simulation sim(1, options, trace);
  const auto a = sim.propose(1, "a");
  sim.run(options.timing.lease_ticks);  // the boot record is durable now
  const auto b = sim.propose(2, "b");
  REQUIRE(a);
  REQUIRE(b);
  sim.learned(1, consensus::Decided{1, consensus::Entry{*a, "a"}});
  CHECK(!sim.violated());
  sim.learned(2, consensus::Decided{1, consensus::Entry{*b, "b"}});
  CHECK(sim.violated());
  CHECK(sim.violation().find("agreement") == 0);
}

TEST_CASE("sim: checkers: a gap in a learned prefix is a violation") {
  Trace trace(false);
  Simulation sim(1, SimOptions{}, trace);
  sim.learned(1, consensus::Decided{2, consensus::Entry{}});
  CHECK(sim.violated());
  CHECK(sim.violation().find("prefix broken") != std::string::npos);
}

TEST_CASE("sim: checkers: learning what nobody proposed is a violation") {
  Trace trace(false);
  Simulation sim(1, SimOptions{}, trace);
  sim.learned(1, consensus::Decided{1, consensus::Entry{{3, 1, 1}, "forged"}});
  CHECK(sim.violated());
  CHECK(sim.violation().find("nobody proposed") != std::string::npos);
}

TEST_CASE("sim: checkers: a proposal that is never decided fails liveness") {
  Trace trace(false);
  Simulation sim(1, SimOptions{}, trace);
  sim.run(30);
  // Every link cut for good: nothing can be decided.
  for (ParticipantId from = 1; from <= 3; from++) {
    for (ParticipantId to = 1; to <= 3; to++) {
      if (from != to) sim.network().block(from, to, 1000000);
    }
  }
  REQUIRE(sim.propose(1, "stuck"));
  CHECK(!sim.settle(500));
  CHECK(sim.violation().find("liveness") == 0);
}
