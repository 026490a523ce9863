// A restart with another --cores (bucket/remap.h): the log rewritten so
// each core's log names only its own buckets, every record found again in
// its bucket's order, the same engine image folded; a damaged log refused
// and left as it was; a leftover of an interrupted swap deleted.
#include <doctest/doctest.h>

#include <map>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include "bucket/engine_records.h"
#include "bucket/log_store.h"
#include "bucket/remap.h"
#include "reactor/block_on.h"
#include "tests/bucket/engine_test_util.h"
#include "tests/bucket/log_test_util.h"

using namespace coworker;
using namespace coworker::bucket;
using namespace coworker::bucket::testing;
using consensus::PhaserRecord;
using reactor::Task;

namespace {

constexpr uint32_t buckets = 12;

LogStore::Config small_config(const std::string& dir) {
  LogStore::Config config;
  config.dir = dir;
  config.segment_bytes = 64 * 1024;  // several segments per core
  config.batch_bytes_max = 16 * 1024;
  return config;
}

// A participant's log written with `cores` cores: bucket b's history on
// core b mod cores, interleaved across buckets; promise counters on every
// core; on core 0 membership records, a connection block, a round marker.
void write_log(const std::string& dir, unsigned cores) {
  reactor::block_on([&]() -> Task<void> {
    std::vector<std::unique_ptr<LogStore>> stores;
    for (unsigned c = 0; c < cores; c++) {
      LogStore::Config config = small_config(dir);
      config.core = c;
      auto opened = LogStore::open(config, Resume{});
      REQUIRE(opened.ok());
      stores.push_back(std::move(*opened));
    }
    auto append = [&](unsigned core, const EngineRecord& record) -> Task<void> {
      auto seq = co_await stores[core]->append(record.meta, record.payload);
      REQUIRE(seq.ok());
    };
    co_await append(0, encode_membership_record(
                           consensus::MembershipRecord{consensus::Identity{7, 1, 3, false, {}, 0}}));
    std::vector<std::vector<PhaserRecord>> histories;
    for (uint32_t b = 0; b < buckets; b++) histories.push_back(history(b, 900 + b, 25));
    for (size_t i = 0; i < histories[0].size() * 2; i++) {
      for (uint32_t b = 0; b < buckets; b++) {
        if (i < histories[b].size()) {
          co_await append(b % cores, encode_phaser_record(b, histories[b][i]));
        }
      }
      if (i % 10 == 0) {
        for (unsigned c = 0; c < cores; c++) {
          co_await append(c, encode_counter_record(static_cast<uint32_t>(1 + i + c)));
        }
        co_await append(0, encode_connection_block(100 * (i + 1)));
        co_await append(0, encode_round_marker());
      }
    }
    co_await append(0, encode_membership_record(consensus::MembershipRecord{
                           consensus::PersistRecord{consensus::PersistBoot{1}}}));
    for (auto& store : stores) co_await store->close();
  }());
}

// What a log holds: each bucket's (and the membership's) records in order,
// the core each record is on, and the image they fold to.
struct Contents {
  std::map<uint32_t, std::vector<std::tuple<RecordKind, uint64_t, std::string>>> streams;
  std::map<uint32_t, std::vector<unsigned>> cores_of;
  EngineImage image;
  bool corrupt = false;
};

Contents read_log(const std::string& dir) {
  Contents out;
  Result<Recovery> recovery = replay_log(dir, [&](const ReplayedRecord& r) {
    out.image.apply(r.header, r.payload);
    if (r.header.bucket == participant_bucket) return;  // replaced by their folds
    out.streams[r.header.bucket].emplace_back(r.header.kind, r.header.position,
                                              std::string(r.payload.data(), r.payload.size()));
    out.cores_of[r.header.bucket].push_back(r.core);
  });
  REQUIRE(recovery.ok());
  for (const CoreReport& report : recovery->cores) out.corrupt |= report.corrupt();
  return out;
}

std::vector<std::string> encoded(uint32_t bucket, const consensus::PhaserDurable& image) {
  std::vector<std::string> out;
  for (const PhaserRecord& record : consensus::checkpoint_records(image)) {
    out.push_back(encode_phaser_record(bucket, record).payload);
  }
  return out;
}

void check_same_image(const EngineImage& got, const EngineImage& want) {
  CHECK(got.counter == want.counter);
  CHECK(got.connection_block_end == want.connection_block_end);
  CHECK(encode_membership_checkpoint(got.membership).payload ==
        encode_membership_checkpoint(want.membership).payload);
  REQUIRE(got.phasers.size() == want.phasers.size());
  for (const auto& [b, durable] : want.phasers) {
    REQUIRE(got.phasers.count(b) == 1);
    check_same(got.phasers.at(b), durable);
    CHECK(encoded(b, got.phasers.at(b)) == encoded(b, durable));
  }
  CHECK(got.damaged_buckets.empty());
  CHECK(!got.membership_damaged);
  CHECK(!got.counter_damaged);
}

void check_remapped(const Contents& before, const Contents& after, unsigned cores) {
  CHECK(!after.corrupt);
  CHECK(after.streams == before.streams);
  for (const auto& [bucket, on] : after.cores_of) {
    for (unsigned core : on) CHECK(core == core_of(bucket, cores));
  }
  check_same_image(after.image, before.image);
}

}  // namespace

TEST_CASE("remap: 2 cores to 3 to 1 and back, every record in its bucket's order, same image") {
  TempDir dir;
  const std::string log = dir.path() + "/log";
  write_log(log, 2);
  const Contents written = read_log(log);
  REQUIRE(!written.corrupt);
  CHECK(written.image.damaged_buckets.empty());
  CHECK(!written.image.membership_damaged);
  CHECK(!written.image.counter_damaged);
  REQUIRE(written.image.counter > 0);
  REQUIRE(written.image.connection_block_end > 0);
  REQUIRE(written.streams.size() == buckets + 1);  // the buckets and the membership

  for (unsigned cores : {3u, 1u, 2u}) {
    CAPTURE(cores);
    Result<RemapReport, std::string> report = remap_log(log, cores, small_config(log));
    REQUIRE_MESSAGE(report.ok(), (report.ok() ? "" : report.error()));
    CHECK(report->records > 0);
    check_remapped(written, read_log(log), cores);
    CHECK(list_cores(log)->size() == cores);
    CHECK(!file_exists(log + ".remap"));
  }
}

TEST_CASE("remap: a leftover of an interrupted swap is deleted, never read") {
  TempDir dir;
  const std::string log = dir.path() + "/log";
  write_log(log, 2);
  const Contents written = read_log(log);
  // The crash after step 4's swap: the old log (here a copy of a 2-core
  // log) sits at <log>.remap; the next attempt deletes it first.
  write_log(log + ".remap", 3);
  Result<RemapReport, std::string> report = remap_log(log, 3, small_config(log));
  REQUIRE(report.ok());
  check_remapped(written, read_log(log), 3);
  write_log(log + ".remap", 1);
  REQUIRE(remove_remap_leftover(log).ok());
  CHECK(!file_exists(log + ".remap"));
  check_remapped(written, read_log(log), 3);
}

TEST_CASE("remap: a damaged log is refused and left as it was") {
  TempDir dir;
  const std::string log = dir.path() + "/log";
  write_log(log, 2);
  const std::string first = segment_path(log, 1, 1);
  // A payload byte of an early record of core 1 (acknowledged batches follow).
  flip_bit(first, 64 * 3 + 20, 2);
  const Contents damaged = read_log(log);
  REQUIRE(damaged.corrupt);
  const std::string bytes = read_range(first, 0, 64 * 1024);
  Result<RemapReport, std::string> report = remap_log(log, 3, small_config(log));
  REQUIRE(!report.ok());
  CHECK(report.error().find("damaged") != std::string::npos);
  CHECK(report.error().find("(2)") != std::string::npos);  // the core count to start with
  CHECK(read_range(first, 0, 64 * 1024) == bytes);
  CHECK(list_cores(log)->size() == 2);
  CHECK(!file_exists(log + ".remap"));
}

TEST_CASE("remap: which records a core of today may not continue") {
  CHECK(core_of(7, 4) == 3);
  CHECK(core_of(membership_bucket, 4) == 0);
  CHECK(core_of(participant_bucket, 4) == 0);
  CHECK(!foreign_record(3, 7, 4));
  CHECK(foreign_record(3, 7, 2));               // bucket 7 belongs to core 1 of 2
  CHECK(foreign_record(1, 6, 4));               // bucket 6 belongs to core 2 of 4
  CHECK(foreign_record(2, participant_bucket, 2));  // core 2 is gone
  CHECK(!foreign_record(1, participant_bucket, 2));  // counters on any core
}
