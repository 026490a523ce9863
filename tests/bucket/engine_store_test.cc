// The engine's records in the log store: each mapping checked against its
// inverse (encode → replay fold equals the in-memory fold), replay refusing
// records that do not fit (damage, never an assertion), and StoreStorage
// staging through a full batch in order, durable tickets, and recovery.
#include <doctest/doctest.h>

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "bucket/engine_records.h"
#include "bucket/log_store.h"
#include "bucket/repair.h"
#include "bucket/segment.h"
#include "bucket/store_storage.h"
#include "consensus/membership_codec.h"
#include "consensus/phaser_codec.h"
#include "consensus/prng.h"
#include "reactor/block_on.h"
#include "reactor/loop.h"
#include "tests/bucket/engine_test_util.h"
#include "tests/bucket/log_test_util.h"

using namespace coworker;
using namespace coworker::bucket;
using namespace coworker::bucket::testing;
using consensus::PhaserRecord;
using reactor::Task;

namespace {

RecordHeader header_of(const EngineRecord& record) {
  RecordHeader header;
  header.kind = record.meta.kind;
  header.bucket = record.meta.bucket;
  header.position = record.meta.position;
  header.promise = record.meta.promise;
  header.payload_bytes = static_cast<uint32_t>(record.payload.size());
  return header;
}

void apply(EngineImage& image, const EngineRecord& record) {
  image.apply(header_of(record), std::span<const char>(record.payload));
}

// Opens a fresh log in config.dir, runs `body(store, storage)` (a coroutine)
// with a StoreStorage over it, then closes the store.
template <class Body>
void with_storage(const LogStore::Config& config, Body body) {
  const EngineImage empty;
  reactor::block_on([&]() -> Task<void> {
    Result<CoreReport> report = replay_core(config.dir, 0, [](const ReplayedRecord&) {});
    REQUIRE(report.ok());
    auto opened = LogStore::open(config, report->resume);
    REQUIRE(opened.ok());
    LogStore& store = **opened;
    StoreStorage storage(store, empty);
    co_await body(store, storage);
    co_await store.close();
  }());
}

size_t longest_history(const std::vector<std::vector<PhaserRecord>>& histories) {
  size_t longest = 0;
  for (const auto& h : histories) longest = std::max(longest, h.size());
  return longest;
}

}  // namespace

TEST_CASE("engine records: replay folds encoded phaser records into the same image") {
  for (uint32_t bucket = 0; bucket < 8; bucket++) {
    const auto records = history(bucket, 100 + bucket, 40);
    EngineImage image;
    for (const PhaserRecord& record : records) apply(image, encode_phaser_record(bucket, record));
    REQUIRE(image.phasers.count(bucket) == 1);
    check_same(image.phasers.at(bucket), fold(records));
    CHECK(image.damaged_buckets.empty());
    CHECK(image.records == records.size());
  }
}

TEST_CASE("engine records: the counter is the highest of any record, membership records fold") {
  EngineImage image;
  for (uint32_t c : {3u, 9u, 4u}) apply(image, encode_counter_record(c));
  CHECK(image.counter == 9);
  consensus::Identity identity{77, 2, 5, false, {}, 0};
  apply(image, encode_membership_record(consensus::MembershipRecord{identity}));
  apply(image, encode_membership_record(
                   consensus::MembershipRecord{consensus::PersistRecord{consensus::PersistBoot{1}}}));
  CHECK(image.membership.identity == identity);
  CHECK(image.membership.paxos.boots == 1);
  CHECK(!image.membership_damaged);
  CHECK(!image.counter_damaged);
}

TEST_CASE("engine records: a record that does not fit damages its bucket, never asserts") {
  const auto records = history(3, 7, 6);
  SUBCASE("a register past the commit end (a lost record before it)") {
    EngineImage image;
    for (size_t i = 0; i < records.size(); i++) {
      if (i == 1) continue;  // the first commit is lost
      apply(image, encode_phaser_record(3, records[i]));
    }
    CHECK(image.damaged_buckets == std::vector<uint32_t>{3});
    CHECK(image.phasers.count(3) == 0);
  }
  SUBCASE("a payload that does not decode") {
    EngineImage image;
    EngineRecord record = encode_phaser_record(3, records[0]);
    // Cut short (a flipped body byte is the payload checksum's to catch:
    // replay hands over intact payloads only, decoded WriteChecksum::covered).
    record.payload.resize(record.payload.size() - 1);
    apply(image, record);
    CHECK(image.damaged_buckets == std::vector<uint32_t>{3});
  }
  SUBCASE("a header that disagrees with its payload") {
    EngineImage image;
    EngineRecord record = encode_phaser_record(3, records[0]);
    record.meta.position += 1;
    apply(image, record);
    CHECK(image.damaged_buckets == std::vector<uint32_t>{3});
  }
  SUBCASE("a membership boot out of order, a counter of zero") {
    EngineImage image;
    apply(image, encode_membership_record(
                     consensus::MembershipRecord{consensus::PersistRecord{consensus::PersistBoot{2}}}));
    CHECK(image.membership_damaged);
    EngineRecord counter = encode_counter_record(5);
    counter.meta.promise.counter = 6;
    apply(image, counter);
    CHECK(image.counter_damaged);
    CHECK(image.counter == 0);
  }
}

TEST_CASE("engine records: another build's format is refused, not taken for damage") {
  const auto records = history(3, 7, 6);
  EngineImage image;
  apply(image, encode_phaser_record(3, records[0]));
  EngineRecord older = encode_phaser_record(3, records[1]);
  older.payload[0] = static_cast<char>(consensus::phaser_format_version - 1);
  apply(image, older);
  EngineRecord membership = encode_membership_record(
      consensus::MembershipRecord{consensus::PersistRecord{consensus::PersistBoot{1}}});
  membership.payload[0] = static_cast<char>(consensus::membership_record_version + 1);
  apply(image, membership);
  REQUIRE(image.format_refused);
  CHECK(*image.format_refused == fmt::format("phaser records of format {} (this build reads format {})",
                                             consensus::phaser_format_version - 1,
                                             consensus::phaser_format_version));
  CHECK(image.damaged_buckets.empty());
  CHECK(!image.membership_damaged);
  CHECK(image.records == 1);
}

TEST_CASE("engine records: repair — a reset forgets a damaged bucket, which folds again from 0") {
  const auto records = history(3, 9, 8);
  EngineImage image;
  for (size_t i = 0; i < records.size(); i++) {
    if (i == 1) continue;  // the first commit lost: damaged
    apply(image, encode_phaser_record(3, records[i]));
  }
  apply(image, encode_phaser_record(4, records[0]));  // another bucket, untouched by the reset
  REQUIRE(image.damaged_buckets == std::vector<uint32_t>{3});
  const uint64_t applied = image.records;
  apply(image, encode_bucket_reset(3));
  CHECK(image.damaged_buckets.empty());
  CHECK(image.phasers.count(3) == 0);
  CHECK(image.phasers.count(4) == 1);
  CHECK(image.records == applied + 1);
  // Regrown under the new id: the same history again, from position 0.
  for (const PhaserRecord& record : records) apply(image, encode_phaser_record(3, record));
  CHECK(image.damaged_buckets.empty());
  check_same(image.phasers.at(3), fold(records));

  SUBCASE("a reset of participant_bucket clears the counter's damage, keeps the highest") {
    apply(image, encode_counter_record(7));
    EngineRecord bad = encode_counter_record(9);
    bad.meta.promise.counter = 8;
    apply(image, bad);
    REQUIRE(image.counter_damaged);
    apply(image, encode_bucket_reset(participant_bucket));
    CHECK(!image.counter_damaged);
    CHECK(image.counter == 7);
  }
  SUBCASE("a reset that does not decode damages instead of forgetting") {
    EngineRecord reset = encode_bucket_reset(4);
    reset.payload[0] = 9;  // an unknown version
    apply(image, reset);
    CHECK(image.damaged_buckets == std::vector<uint32_t>{4});
  }
}

TEST_CASE("engine records: a phaser's reset drops its copy, keeps its promise, folds again from 0") {
  const auto records = history(3, 11, 8);
  EngineImage image;
  for (const PhaserRecord& record : records) apply(image, encode_phaser_record(3, record));
  const auto other = history(4, 12, 3);  // another bucket, untouched by the reset
  for (const PhaserRecord& record : other) apply(image, encode_phaser_record(4, record));
  const consensus::PhaserDurable before = fold(records);
  REQUIRE(before.commit_end > 0);
  const consensus::Promise promise{before.promise.slot + 1, 1};
  const EngineRecord reset = encode_phaser_record(3, consensus::ResetRecord{promise});
  CHECK(reset.meta.kind == RecordKind::bucket_reset);  // the index and recovery see a reset
  const uint64_t applied = image.records;
  apply(image, reset);
  CHECK(image.records == applied + 1);
  REQUIRE(image.phasers.count(3) == 1);
  const consensus::PhaserDurable& after = image.phasers.at(3);
  CHECK(after.promise == promise);
  CHECK(after.commit_end == 0);
  CHECK(after.register_ == nullptr);
  CHECK(after.dedup.connections() == 0);
  check_same(image.phasers.at(4), fold(other));
  SUBCASE("its header must carry the record's promise") {
    EngineRecord wrong = reset;
    wrong.meta.promise.counter++;
    apply(image, wrong);
    CHECK(image.damaged_buckets == std::vector<uint32_t>{3});
  }
}

// Per-bucket repair (bucket/repair.h, phaser.h step 9g): damage to a bucket
// only keeps the id; the bucket's copy is void, its RepairRecord folds to
// the same void image, and a checkpoint round writes it again through the
// store, so a restart finds it void, never empty and servable.
TEST_CASE("engine records: repair per bucket — the id is kept, the copy void, a round keeps it void") {
  const auto records = history(3, 9, 8);
  const auto other = history(4, 12, 3);
  EngineImage image;
  const consensus::Identity member{77, 2, 5, false, {}, 0};
  apply(image, encode_membership_record(consensus::MembershipRecord{member}));
  apply(image, encode_counter_record(6));
  for (size_t i = 0; i < records.size(); i++) {
    if (i == 1) continue;  // the first commit lost: damaged
    apply(image, encode_phaser_record(3, records[i]));
  }
  for (const PhaserRecord& record : other) apply(image, encode_phaser_record(4, record));
  REQUIRE(image.damaged_buckets == std::vector<uint32_t>{3});
  Recovery recovery;
  recovery.cores.emplace_back();
  auto plan = plan_repair(image, recovery, 1, {}, 1, false);
  REQUIRE(plan.ok());
  REQUIRE(plan->has_value());
  const Repair& repair = **plan;
  CHECK(repair.keeps_id);
  CHECK(repair.identity.id == 5);
  CHECK(image.membership.identity.id == 5);  // nothing given up
  CHECK(image.counter == 6);
  CHECK(repair.resets == std::vector<std::vector<uint32_t>>{{3}});
  CHECK(void_copies(image) == std::vector<uint32_t>{3});
  CHECK(image.phasers.at(3).repairing);
  CHECK(image.phasers.at(3).commit_end == 0);
  check_same(image.phasers.at(4), fold(other));

  // What step 3 stages folds, after the damaged records, to the same image.
  const EngineRecord staged = repair_record(3, image);
  CHECK(staged.meta.kind == RecordKind::bucket_reset);
  EngineImage replayed;
  for (size_t i = 0; i < records.size(); i++) {
    if (i != 1) apply(replayed, encode_phaser_record(3, records[i]));
  }
  apply(replayed, staged);
  CHECK(replayed.damaged_buckets.empty());
  REQUIRE(replayed.phasers.count(3) == 1);
  CHECK(replayed.phasers.at(3).repairing);
  CHECK(void_copies(replayed) == std::vector<uint32_t>{3});

  // A round writes the void copy as its RepairRecord, through the store.
  const std::vector<PhaserRecord> round = consensus::checkpoint_records(image.phasers.at(3));
  REQUIRE(round.size() == 1);
  REQUIRE(std::holds_alternative<consensus::RepairRecord>(round[0]));
  TempDir dir;
  LogStore::Config config;
  config.dir = dir.path();
  with_storage(config, [&](LogStore& store, StoreStorage& storage) -> Task<void> {
    storage.stage_round_marker();
    storage.stage_checkpoint({encode_phaser_record(3, round[0])});
    auto durable = co_await store.durable(storage.last_seq());
    CHECK(durable.ok());
  });
  EngineImage recovered;
  Result<Recovery> replay = replay_log(dir.path(), [&](const ReplayedRecord& r) {
    recovered.apply(r.header, r.payload);
  });
  REQUIRE(replay.ok());
  CHECK(!replay->cores.at(0).corrupt());
  CHECK(void_copies(recovered) == std::vector<uint32_t>{3});
}

TEST_CASE("engine records: repair — an identity checkpoint replaces the membership state") {
  EngineImage image;
  consensus::Identity member{77, 2, 5, false, {}, 0};
  apply(image, encode_membership_record(consensus::MembershipRecord{member}));
  apply(image, encode_membership_record(
                   consensus::MembershipRecord{consensus::PersistRecord{consensus::PersistBoot{1}}}));
  apply(image, encode_membership_record(
                   consensus::MembershipRecord{consensus::PersistRecord{consensus::PersistBoot{7}}}));
  REQUIRE(image.membership_damaged);
  consensus::Identity given_up{77, 2 + (uint64_t{1} << 32), consensus::no_participant, false,
                               {"127.0.0.1:7101|127.0.0.1:7001"}, 42};
  apply(image, encode_identity_checkpoint(given_up));
  CHECK(!image.membership_damaged);
  CHECK(image.membership.identity == given_up);
  CHECK(image.membership.paxos.boots == 0);
  // The arrival that follows folds on top, as after a departure.
  consensus::Identity arriving = given_up;
  arriving.incarnation++;
  arriving.arriving = true;
  apply(image, encode_membership_record(consensus::MembershipRecord{arriving}));
  CHECK(!image.membership_damaged);
  CHECK(image.membership.identity == arriving);

  SUBCASE("an identity checkpoint in the membership record's format (before 2026-12-03)") {
    consensus::Identity later = arriving;
    later.arriving = false;
    EngineRecord record = encode_membership_record(consensus::MembershipRecord{later});
    record.meta.kind = RecordKind::membership_checkpoint;
    apply(image, record);
    CHECK(!image.membership_damaged);
    CHECK(image.membership.identity == later);
  }
  SUBCASE("a round's checkpoint of the whole state replaces it, acceptor state included") {
    consensus::MembershipDurable whole;
    whole.identity = consensus::Identity{77, arriving.incarnation, 9, false, {}, 0};
    whole.paxos.boots = 3;
    whole.paxos.promised = consensus::Ballot{4, 9};
    apply(image, bucket::encode_membership_checkpoint(whole));
    CHECK(!image.membership_damaged);
    CHECK(image.membership.identity == whole.identity);
    CHECK(image.membership.paxos.boots == 3);
    CHECK(image.membership.paxos.promised == whole.paxos.promised);
  }
  SUBCASE("a checkpoint that names an id is not ours: damage") {
    EngineRecord record = encode_membership_record(consensus::MembershipRecord{member});
    record.meta.kind = RecordKind::membership_checkpoint;
    apply(image, record);
    CHECK(image.membership_damaged);
  }
}

TEST_CASE("engine records: StoreStorage stages through a full batch in order and recovers") {
  TempDir dir;
  LogStore::Config config;
  config.dir = dir.path();
  config.segment_bytes = 64 * 1024;
  config.batch_bytes_max = LogStore::batch_bytes_min;  // forces overflow
  std::vector<std::vector<PhaserRecord>> histories;
  for (uint32_t b = 0; b < 6; b++) histories.push_back(history(b, 500 + b, 30));
  with_storage(config, [&](LogStore& store, StoreStorage& storage) -> Task<void> {
    HostStorage::Ticket last = 0;
    bool overflowed = false;
    // Interleave the buckets as a core's phasers would, one record per call
    // and some calls of several records.
    for (size_t i = 0; i < longest_history(histories); i++) {
      for (uint32_t b = 0; b < histories.size(); b++) {
        const auto& h = histories[b];
        if (i >= h.size()) continue;
        const HostStorage::Ticket t = storage.stage_phaser(b, {h[i]}, Flush::now);
        CHECK(t == last + 1);
        last = t;
        overflowed |= storage.overflowing();
      }
      if (i % 7 == 0) last = storage.stage_counter(static_cast<uint32_t>(i / 7 + 1));
    }
    last = storage.stage_membership({consensus::Identity{9, 1, 4, false, {}, 0}});
    CHECK(overflowed);
    CHECK(storage.durable() < last);
    co_await storage.drain_overflow();
    CHECK(!storage.overflowing());
    auto durable = co_await store.durable(storage.last_seq());
    CHECK(durable.ok());
    CHECK(storage.durable() == last);
  });
  EngineImage recovered;
  Result<Recovery> recovery = replay_log(dir.path(), [&](const ReplayedRecord& r) {
    recovered.apply(r.header, r.payload);
  });
  REQUIRE(recovery.ok());
  CHECK(!recovery->cores.at(0).corrupt());
  CHECK(recovered.damaged_buckets.empty());
  CHECK(recovered.counter == (longest_history(histories) - 1) / 7 + 1);
  CHECK(recovered.membership.identity.id == 4);
  for (uint32_t b = 0; b < histories.size(); b++) {
    REQUIRE(recovered.phasers.count(b) == 1);
    check_same(recovered.phasers.at(b), fold(histories[b]));
  }
}

// A crash keeps any prefix of the batch being written that ends at a record
// boundary (recovery cannot tell it from a whole batch: recovery.h step 2),
// and a round may span two batches (StoreStorage's overflow). A round's
// checkpoint followed by nothing of its register must not lose the
// register: it may be a write this replica acked. (Found by the simulator's
// torn batches, tests/sim/log_files.h: an acknowledged position lost.)
TEST_CASE("engine records: a round cut between a bucket's checkpoint and its register keeps it") {
  constexpr uint32_t bucket = 3;
  std::vector<PhaserRecord> records;
  for (uint64_t seed = 1; records.empty() || fold(records).register_ == nullptr; seed++) {
    records = history(bucket, seed, 12);
  }
  const consensus::PhaserDurable before = fold(records);
  const std::vector<PhaserRecord> round = consensus::checkpoint_records(before);
  REQUIRE(round.size() == 2);  // the checkpoint, then the register
  TempDir dir;
  LogStore::Config config;
  config.dir = dir.path();
  config.segment_bytes = 1024 * 1024;
  std::pair<uint64_t, uint64_t> register_place;
  reactor::block_on([&]() -> Task<void> {
    auto opened = LogStore::open(config, Resume{});
    REQUIRE(opened.ok());
    LogStore& store = **opened;
    auto stage = [&](const PhaserRecord& record) {
      const EngineRecord encoded = encode_phaser_record(bucket, record);
      Result<uint64_t, LogErrc> seq = store.stage(encoded.meta, encoded.payload);
      REQUIRE(seq.ok());
      return *seq;
    };
    for (const PhaserRecord& record : records) stage(record);
    stage(round[0]);
    const uint64_t last = stage(round[1]);
    register_place = store.last_location();
    CHECK((co_await store.durable(last)).ok());
    co_await store.close();
  }());
  // The round's register record never reached the disk: its header reads as zeros.
  zero_range(segment_path(dir.path(), 0, register_place.first), register_place.second,
             record_header_bytes);
  EngineImage recovered;
  Result<CoreReport> report = replay_core(dir.path(), 0, [&](const ReplayedRecord& r) {
    recovered.apply(r.header, r.payload);
  });
  REQUIRE(report.ok());
  CHECK(!report->corrupt());
  CHECK(report->torn.has_value());  // cut there, as the end of the log
  REQUIRE(recovered.phasers.count(bucket) == 1);
  const consensus::PhaserDurable& image = recovered.phasers.at(bucket);
  REQUIRE(image.register_ != nullptr);
  CHECK(image.register_->end() == before.register_->end());
  CHECK(image.register_->checksum == before.register_->checksum);
  check_same(image, before);
}
