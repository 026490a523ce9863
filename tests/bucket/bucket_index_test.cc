// The per-bucket index of committed writes (bucket_index.h) and reads by
// position through io_uring (entry_reader.h): the commit rule on its own,
// then histories of several buckets staged through StoreStorage and read
// back at random ranges — live, after a reopen, across small segments, under
// a bound on reads in flight — and damage on disk failing as `corrupt`,
// never as wrong entries. Single-threaded: each scenario runs on one Loop.
#include <doctest/doctest.h>
#include <unistd.h>

#include <algorithm>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "bucket/bucket_index.h"
#include "bucket/engine_records.h"
#include "bucket/entry_reader.h"
#include "bucket/log_store.h"
#include "bucket/segment.h"
#include "bucket/store_storage.h"
#include "consensus/phaser_codec.h"
#include "consensus/prng.h"
#include "reactor/block_on.h"
#include "reactor/loop.h"
#include "reactor/sync.h"
#include "tests/bucket/log_test_util.h"

using namespace coworker;
using namespace coworker::bucket;
using namespace coworker::bucket::testing;
using consensus::BucketEntry;
using consensus::PhaserRecord;
using reactor::Task;

namespace {

using Entries = std::vector<BucketEntry>;
constexpr size_t bytes_unbounded = size_t{1} << 40;

// A write of `n` entries at `first`; `serial` keeps every connection's series
// increasing along any history (DedupTable asserts it).
consensus::WritePtr make_write(uint32_t bucket, consensus::Promise promise, uint64_t number,
                               consensus::Position first, uint64_t n, uint64_t serial,
                               consensus::Prng& prng) {
  auto write = std::make_shared<consensus::Write>();
  write->bucket = bucket;
  write->promise = promise;
  write->number = number;
  write->first = first;
  for (uint64_t i = 0; i < n; i++) {
    BucketEntry entry;
    entry.identifier = "id-" + std::to_string(prng.below(1000));
    entry.connection = consensus::ConnectionId{1 + prng.below(3), prng.below(4)};
    entry.series = serial * 10 + i;
    entry.window = serial * 10;
    entry.body = std::string(prng.below(300), static_cast<char>('a' + prng.below(26)));
    write->entries.push_back(std::move(entry));
  }
  write->checksum = consensus::checksum_of(*write);
  return write;
}

consensus::CommitRecord commit_of(const consensus::Write& write) {
  return consensus::CommitRecord{{write.end(), write.number, write.checksum}, write.first};
}

// A bucket's history as a correct phaser persists it: registers at the
// commit end and their commits; now and then a higher promise that
// re-proposes the register (the same entries, a leadership start) or
// replaces it with another write at the same positions (a replica's
// register overtaken by a new leader's); a leadership start's empty write;
// a commit of the write already committed while a register waits. The last
// register may stay uncommitted.
std::vector<PhaserRecord> history(uint32_t bucket, uint64_t seed, int writes) {
  consensus::Prng prng(seed);
  std::vector<PhaserRecord> out;
  consensus::Promise promise{1, 1};
  consensus::Position end = 0;
  consensus::CommitMark last{};
  uint64_t number = 0;
  uint64_t serial = 0;
  for (int w = 0; w < writes; w++) {
    if (prng.chance_per_mille(100)) {  // an empty write of a leadership start
      promise.counter++;
      auto empty = make_write(bucket, promise, ++number, end, 0, ++serial, prng);
      out.push_back(consensus::RegisterRecord{empty});
      out.push_back(commit_of(*empty));
    }
    auto write = make_write(bucket, promise, ++number, end, 1 + prng.below(5), ++serial, prng);
    out.push_back(consensus::RegisterRecord{write});
    if (prng.chance_per_mille(200)) {
      promise.counter++;
      out.push_back(consensus::PromiseRecord{promise});
      auto again = std::make_shared<consensus::Write>(*write);
      if (prng.chance_per_mille(500)) {
        again = std::const_pointer_cast<consensus::Write>(
            make_write(bucket, promise, number, end, 1 + prng.below(5), ++serial, prng));
      }
      again->promise = promise;
      write = again;
      out.push_back(consensus::RegisterRecord{write});
    }
    if (prng.chance_per_mille(100) && last.end == end) {
      out.push_back(consensus::CommitRecord{last, end});  // committed already: no change
    }
    if (w + 1 < writes || prng.chance_per_mille(500)) {
      out.push_back(commit_of(*write));
      last = {write->end(), write->number, write->checksum};
      end = write->end();
    }
  }
  return out;
}

// What the index must serve: the committed entries of a history.
consensus::PhaserDurable fold(const std::vector<PhaserRecord>& records) {
  consensus::PhaserDurable image;
  image.keep_log = true;
  for (const PhaserRecord& record : records) image.apply(record);
  return image;
}

struct Bucket {
  uint32_t id = 0;
  std::vector<PhaserRecord> history;
  consensus::PhaserDurable folded;
};

std::vector<Bucket> make_buckets(uint32_t count, uint64_t seed, int writes) {
  std::vector<Bucket> buckets;
  for (uint32_t b = 0; b < count; b++) {
    Bucket bucket{b * 7 + 1, history(b * 7 + 1, seed + b, writes), {}};
    bucket.folded = fold(bucket.history);
    buckets.push_back(std::move(bucket));
  }
  return buckets;
}

LogStore::Config store_config(const TempDir& dir, uint64_t segment_bytes) {
  LogStore::Config config;
  config.dir = dir.path();
  config.segment_bytes = segment_bytes;
  config.batch_bytes_max = 64 * 1024;  // small: some stages overflow
  return config;
}

Task<void> check_committed_prefix(EntryReader& reader, const BucketIndex& index,
                                  const std::vector<Bucket>& buckets);

// Opens the core-0 log, stages every history through StoreStorage with
// `index` attached (the buckets interleaved, one record per call), waits
// until all is durable, closes the log. Every 16 rounds, once what is
// staged is durable, the committed entries are read back while the log
// goes on (a read of the page cache while later batches are written).
Task<void> stage_all(LogStore::Config config, const std::vector<Bucket>& buckets,
                     BucketIndex& index) {
  Result<CoreReport> report = replay_core(config.dir, 0, [](const ReplayedRecord&) {});
  REQUIRE(report.ok());
  auto opened = LogStore::open(config, report->resume);
  REQUIRE(opened.ok());
  LogStore& store = **opened;
  const EngineImage empty;
  StoreStorage storage(store, empty, &index);
  EntryReader reader({config.dir}, index);
  size_t longest = 0;
  for (const Bucket& b : buckets) longest = std::max(longest, b.history.size());
  for (size_t i = 0; i < longest; i++) {
    for (const Bucket& b : buckets) {
      if (i < b.history.size()) (void)storage.stage_phaser(b.id, {b.history[i]}, Flush::now);
    }
    if (storage.overflowing()) co_await storage.drain_overflow();
    if (i % 16 != 15) continue;
    auto durable = co_await store.durable(storage.last_seq());
    CHECK(durable.ok());
    co_await check_committed_prefix(reader, index, buckets);
  }
  co_await storage.drain_overflow();
  auto durable = co_await store.durable(storage.last_seq());
  CHECK(durable.ok());
  co_await check_committed_prefix(reader, index, buckets);
  co_await store.close();
}

void replay_into(BucketIndex& index, const std::string& dir) {
  Result<CoreReport> report =
      replay_core(dir, 0, [&](const ReplayedRecord& record) { index.on_replayed(record); });
  REQUIRE(report.ok());
  CHECK(!report->corrupt());
}

// Register records that replaced the one before them at the same positions
// (re-proposals), and histories ending with an uncommitted register.
std::pair<int, int> replaced_and_pending(const std::vector<Bucket>& buckets) {
  int replaced = 0;
  int pending = 0;
  for (const Bucket& b : buckets) {
    const consensus::Write* previous = nullptr;
    for (const PhaserRecord& record : b.history) {
      const auto* r = std::get_if<consensus::RegisterRecord>(&record);
      if (r == nullptr) continue;
      if (previous != nullptr && previous->first == r->write->first &&
          previous->checksum != r->write->checksum && !r->write->entries.empty()) {
        replaced++;
      }
      previous = r->write.get();
    }
    pending += b.folded.register_ != nullptr;
  }
  return {replaced, pending};
}

void check_index(const BucketIndex& index, const std::vector<Bucket>& buckets) {
  for (const Bucket& b : buckets) {
    CHECK(!index.damaged(b.id));
    CHECK(index.committed_end(b.id) == b.folded.commit_end);
    CHECK(index.retained_start(b.id) == 0);
    if (b.folded.register_ && !b.folded.register_->entries.empty()) {
      CHECK(!index.find(b.id, b.folded.register_->first).has_value());
    }
  }
}

// A page's entries copied out of its buffers (every field compared).
Entries owned(const EntryPage& page) {
  Entries out;
  for (const consensus::EntryView& entry : page.entries) out.push_back(entry.owned());
  return out;
}

Entries slice(const Entries& log, uint64_t from, size_t n) {
  return Entries(log.begin() + static_cast<std::ptrdiff_t>(from),
                 log.begin() + static_cast<std::ptrdiff_t>(from + n));
}

// Random ranges of every bucket read back: each answer is the committed
// entries from `from`, all of them up to the limit or the committed end.
Task<void> check_random_reads(EntryReader& reader, const std::vector<Bucket>& buckets,
                              uint64_t seed, int reads) {
  consensus::Prng prng(seed);
  for (int i = 0; i < reads; i++) {
    const Bucket& b = buckets[prng.below(buckets.size())];
    const Entries& log = b.folded.log;
    const uint64_t from = prng.below(log.size() + 2);
    const size_t limit = 1 + prng.below(40);
    auto got = co_await reader.read(b.id, from, limit, bytes_unbounded);
    REQUIRE(got.ok());
    const size_t want = from >= log.size() ? 0 : std::min<size_t>(limit, log.size() - from);
    REQUIRE(got->size() == want);
    if (want > 0) CHECK(owned(*got) == slice(log, from, want));
  }
}

// Every bucket read from 0 to its end, page by page, `next` = from + size.
Task<void> check_read_through(EntryReader& reader, const std::vector<Bucket>& buckets,
                              size_t limit) {
  for (const Bucket& b : buckets) {
    Entries all;
    uint64_t next = 0;
    for (;;) {
      auto page = co_await reader.read(b.id, next, limit, bytes_unbounded);
      REQUIRE(page.ok());
      if (page->empty()) break;
      next += page->size();
      const Entries got = owned(*page);
      all.insert(all.end(), got.begin(), got.end());
    }
    CHECK(next == b.folded.commit_end);
    CHECK(all == b.folded.log);
  }
}

// What the index holds committed so far reads back as the committed prefix
// of each bucket's history.
Task<void> check_committed_prefix(EntryReader& reader, const BucketIndex& index,
                                  const std::vector<Bucket>& buckets) {
  for (const Bucket& b : buckets) {
    const consensus::Position end = index.committed_end(b.id);
    REQUIRE(end <= b.folded.log.size());
    if (end == 0) continue;
    auto got = co_await reader.read(b.id, 0, end, bytes_unbounded);
    REQUIRE(got.ok());
    CHECK(owned(*got) == slice(b.folded.log, 0, end));
  }
}

// Feeds the index a record as if staged at a made-up place of segment 1.
void stage(BucketIndex& index, uint32_t bucket, const PhaserRecord& record, uint64_t& offset) {
  const size_t bytes = consensus::encode(record).size();
  index.on_staged(bucket, record, 1, offset, bytes);
  offset += record_bytes(bytes);
}

ReplayedRecord replayed(uint32_t bucket, const PhaserRecord& record, const std::string& payload,
                        uint64_t offset) {
  const EngineRecord engine = encode_phaser_record(bucket, record);
  ReplayedRecord out;
  out.segment = 1;
  out.offset = offset;
  out.header.kind = engine.meta.kind;
  out.header.bucket = bucket;
  out.header.position = engine.meta.position;
  out.header.promise = engine.meta.promise;
  out.header.location = static_cast<uint32_t>(offset / record_align);
  out.header.payload_bytes = static_cast<uint32_t>(payload.size());
  out.payload = std::span<const char>(payload);
  return out;
}

// Bucket 9's write of two entries at 0, and its register and commit records'
// payloads, for replay cases.
struct EncodedWrite {
  consensus::WritePtr write;
  std::string reg;
  std::string com;
};
EncodedWrite encoded_write(uint64_t seed) {
  consensus::Prng prng(seed);
  auto write = make_write(9, {1, 1}, 1, 0, 2, 1, prng);
  return {write, consensus::encode(PhaserRecord{consensus::RegisterRecord{write}}),
          consensus::encode(PhaserRecord{commit_of(*write)})};
}

}  // namespace

TEST_CASE("bucket index: a commit makes the candidate register a write, at 24 bytes a write") {
  consensus::Prng prng(1);
  BucketIndex index(0);
  uint64_t offset = 128;
  auto first = make_write(5, {1, 1}, 1, 0, 3, 1, prng);
  stage(index, 5, consensus::RegisterRecord{first}, offset);
  CHECK(index.committed_end(5) == 0);
  CHECK(!index.find(5, 0).has_value());
  stage(index, 5, commit_of(*first), offset);
  CHECK(index.committed_end(5) == 3);
  REQUIRE(index.find(5, 2).has_value());
  CHECK(index.find(5, 2)->first == 0);
  CHECK(index.find(5, 2)->offset() == 128);
  CHECK(!index.find(5, 3).has_value());
  CHECK(index.memory_bytes() >= sizeof(IndexedWrite));
  CHECK(sizeof(IndexedWrite) == 24);

  SUBCASE("a commit of anything but the candidate changes nothing") {
    auto second = make_write(5, {1, 1}, 2, 3, 2, 2, prng);
    stage(index, 5, consensus::RegisterRecord{second}, offset);
    stage(index, 5, commit_of(*first), offset);  // the old write, committed again
    CHECK(index.committed_end(5) == 3);
    CHECK(index.writes(5) == 1);
    stage(index, 5, commit_of(*second), offset);
    CHECK(index.committed_end(5) == 5);
    CHECK(index.find(5, 4)->first == 3);
    CHECK(index.find(5, 0)->first == 0);
  }
  SUBCASE("a re-proposal replaces the candidate: its commit indexes the newest record") {
    auto older = make_write(5, {1, 1}, 2, 3, 4, 2, prng);
    auto newer = make_write(5, {1, 2}, 2, 3, 2, 3, prng);
    stage(index, 5, consensus::RegisterRecord{older}, offset);
    const uint64_t newer_offset = offset;
    stage(index, 5, consensus::RegisterRecord{newer}, offset);
    CHECK(index.committed_end(5) == 3);
    stage(index, 5, commit_of(*newer), offset);
    CHECK(index.committed_end(5) == 5);
    CHECK(index.find(5, 3)->offset() == newer_offset);
  }
  SUBCASE("a round's checkpoint at the end keeps the candidate, as the durable fold does") {
    // Replay may stop between a round's checkpoint and its record of the
    // register (a torn batch, a round over two batches): the register's
    // commit must still index it.
    auto second = make_write(5, {1, 1}, 2, 3, 2, 2, prng);
    stage(index, 5, consensus::RegisterRecord{second}, offset);
    stage(index, 5,
          consensus::CheckpointRecord{consensus::CommittedState{
              {1, 1}, 3, consensus::CommitMark{3, first->number, first->checksum}, 0,
              consensus::CommitMark{3, first->number, first->checksum},
              std::make_shared<const consensus::DedupTable>()}},
          offset);
    CHECK(index.committed_end(5) == 3);
    stage(index, 5, commit_of(*second), offset);
    CHECK(index.committed_end(5) == 5);
    CHECK(index.find(5, 4)->first == 3);
  }
  SUBCASE("a leadership start's empty write commits and adds no element") {
    auto empty = make_write(5, {1, 2}, 2, 3, 0, 2, prng);
    stage(index, 5, consensus::RegisterRecord{empty}, offset);
    stage(index, 5, commit_of(*empty), offset);
    CHECK(index.committed_end(5) == 3);
    CHECK(index.writes(5) == 1);
    CHECK(index.writes_total() == 1);
  }
}

TEST_CASE("bucket index: replay marks a bucket damaged at a record that does not fit") {
  const EncodedWrite encoded = encoded_write(2);
  const auto& [write, reg, com] = encoded;
  BucketIndex index(0);
  SUBCASE("a clean pair commits") {
    index.on_replayed(replayed(9, consensus::RegisterRecord{write}, reg, 128));
    index.on_replayed(replayed(9, commit_of(*write), com, 512));
    CHECK(index.committed_end(9) == 2);
    CHECK(!index.damaged(9));
  }
  SUBCASE("a register that disagrees with its header") {
    ReplayedRecord record = replayed(9, consensus::RegisterRecord{write}, reg, 128);
    record.header.position = 1;
    index.on_replayed(record);
    CHECK(index.damaged(9));
  }
  SUBCASE("a payload that does not decode") {
    std::string bad = reg;
    bad.resize(bad.size() - 1);  // cut short (a flipped byte: the payload checksum's)
    index.on_replayed(replayed(9, consensus::RegisterRecord{write}, bad, 128));
    CHECK(index.damaged(9));
  }
  SUBCASE("a commit past the committed end of something never registered (a lost record)") {
    index.on_replayed(replayed(9, commit_of(*write), com, 512));
    CHECK(index.damaged(9));
    // Damaged stays damaged: later records are not served either.
    index.on_replayed(replayed(9, consensus::RegisterRecord{write}, reg, 640));
    CHECK(index.damaged(9));
    CHECK(index.committed_end(9) == 0);
  }
}

TEST_CASE("bucket index: a reset forgets a bucket, damaged or not; it is indexed from 0 again") {
  const EncodedWrite encoded = encoded_write(3);
  const auto& [write, reg, com] = encoded;
  BucketIndex index(0);
  index.on_replayed(replayed(9, commit_of(*write), com, 512));  // a lost register: damaged
  REQUIRE(index.damaged(9));
  ReplayedRecord reset = replayed(9, commit_of(*write), com, 640);
  reset.header.kind = RecordKind::bucket_reset;
  index.on_replayed(reset);
  CHECK(!index.damaged(9));
  CHECK(index.committed_end(9) == 0);
  index.on_replayed(replayed(9, consensus::RegisterRecord{write}, reg, 768));
  index.on_replayed(replayed(9, commit_of(*write), com, 1024));
  CHECK(index.committed_end(9) == 2);
  CHECK(index.writes_total() == 1);
  index.reset(9);  // live (StoreStorage::stage_repair)
  CHECK(index.committed_end(9) == 0);
  CHECK(index.writes_total() == 0);
}

TEST_CASE("bucket index: reads return the committed entries of any range, and again after reopen") {
  TempDir dir;
  const auto buckets = make_buckets(5, 1000, 60);
  const auto [replaced, pending] = replaced_and_pending(buckets);
  CHECK(replaced > 0);  // some registers were replaced by other writes before their commit
  CHECK(pending > 0);   // and some histories end with a register not committed
  BucketIndex live(0);
  reactor::block_on(stage_all(store_config(dir, 256 * 1024), buckets, live));
  check_index(live, buckets);
  BucketIndex reopened(0);
  replay_into(reopened, dir.path());
  check_index(reopened, buckets);
  CHECK(reopened.writes_total() == live.writes_total());
  for (const Bucket& b : buckets) {
    for (uint64_t p = 0; p < b.folded.commit_end; p++) {
      CHECK(live.find(b.id, p) == reopened.find(b.id, p));
    }
  }
  for (const BucketIndex* index : std::vector<const BucketIndex*>{&live, &reopened}) {
    reactor::block_on([&]() -> Task<void> {
      EntryReader reader({dir.path()}, *index);
      co_await check_random_reads(reader, buckets, 77, 400);
      co_await check_read_through(reader, buckets, 7);
      CHECK(reader.stats().corrupt == 0);
    }());
  }
}

TEST_CASE("bucket index: an uncommitted last register is not readable, nor a damaged bucket") {
  TempDir dir;
  auto buckets = make_buckets(1, 3, 10);
  consensus::Prng prng(4);
  const consensus::Position end = buckets[0].folded.commit_end;
  // A register a higher promise put in place, never committed.
  auto pending = make_write(buckets[0].id, {9, 9}, 99, end, 3, 999, prng);
  buckets[0].history.push_back(consensus::RegisterRecord{pending});
  buckets[0].folded = fold(buckets[0].history);
  REQUIRE(buckets[0].folded.register_ == pending);
  BucketIndex index(0);
  reactor::block_on(stage_all(store_config(dir, 256 * 1024), buckets, index));
  CHECK(index.committed_end(buckets[0].id) == end);
  reactor::block_on([&]() -> Task<void> {
    EntryReader reader({dir.path()}, index);
    auto at_end = co_await reader.read(buckets[0].id, end, 10, bytes_unbounded);
    REQUIRE(at_end.ok());
    CHECK(at_end->empty());
    auto before = co_await reader.read(buckets[0].id, end - 1, 10, bytes_unbounded);
    REQUIRE(before.ok());
    CHECK(before->size() == 1);
    auto unknown = co_await reader.read(12345, 0, 10, bytes_unbounded);
    REQUIRE(unknown.ok());
    CHECK(unknown->empty());
    index.mark_damaged(buckets[0].id);
    auto damaged = co_await reader.read(buckets[0].id, 0, 10, bytes_unbounded);
    REQUIRE(!damaged.ok());
    CHECK(damaged.error() == ReadErrc::not_found);
  }());
}

TEST_CASE("bucket index: reads cross small segments, with few files open and few reads in flight") {
  TempDir dir;
  const auto buckets = make_buckets(4, 2000, 80);
  BucketIndex index(0);
  reactor::block_on(stage_all(store_config(dir, LogStore::segment_bytes_min), buckets, index));
  std::set<uint32_t> segments;
  for (const Bucket& b : buckets) {
    for (uint64_t p = 0; p < b.folded.commit_end; p++) {
      segments.insert(index.find(b.id, p)->segment);
    }
  }
  CHECK(segments.size() > 20);
  reactor::block_on([&]() -> Task<void> {
    EntryReader reader({dir.path(), 4, 2}, index);
    co_await check_read_through(reader, buckets, 25);
    co_await check_random_reads(reader, buckets, 5, 300);
    CHECK(reader.files_open() <= 2);
    // 64 reads at once: never more than 4 Read ops in flight.
    std::vector<Task<bool>> reads;
    for (int i = 0; i < 64; i++) {
      reads.push_back([](EntryReader& r, const Bucket& b, uint64_t from) -> Task<bool> {
        auto got = co_await r.read(b.id, from, 30, bytes_unbounded);
        const size_t n = std::min<size_t>(30, b.folded.log.size() - from);
        co_return got.ok() && owned(*got) == slice(b.folded.log, from, n);
      }(reader, buckets[i % 4], static_cast<uint64_t>(i)));
    }
    const std::vector<bool> good = co_await reactor::when_all(std::move(reads));
    CHECK(std::count(good.begin(), good.end(), true) == 64);
    CHECK(reader.stats().in_flight_peak == 4);
    CHECK(reader.stats().slot_waits > 0);
    CHECK(reader.in_flight() == 0);
  }());
}

TEST_CASE("bucket index: a read stops at its byte bound, but always reads one register") {
  TempDir dir;
  const auto buckets = make_buckets(1, 3000, 30);
  BucketIndex index(0);
  reactor::block_on(stage_all(store_config(dir, 256 * 1024), buckets, index));
  const Bucket& b = buckets[0];
  reactor::block_on([&]() -> Task<void> {
    EntryReader reader({dir.path()}, index);
    const IndexedWrite first = *index.find(b.id, 0);
    auto one = co_await reader.read(b.id, 0, 1000, 1);
    REQUIRE(one.ok());
    CHECK(owned(*one) == slice(b.folded.log, 0, first.entries));
    const IndexedWrite second = *index.find(b.id, first.end());
    // The bound counts every byte read: both records, and what lies between
    // them when one op reads both.
    REQUIRE(second.segment == first.segment);
    const size_t both = second.offset() + record_header_bytes + second.payload_bytes -
                        first.offset();
    auto two = co_await reader.read(b.id, 0, 1000, both);
    REQUIRE(two.ok());
    CHECK(owned(*two) == slice(b.folded.log, 0, second.end()));
    // One byte short of the two records alone: the first only, in one op
    // or two.
    const size_t records =
        2 * record_header_bytes + first.payload_bytes + second.payload_bytes;
    auto short_of_two = co_await reader.read(b.id, 0, 1000, records - 1);
    REQUIRE(short_of_two.ok());
    CHECK(owned(*short_of_two) == slice(b.folded.log, 0, first.entries));
  }());
}

TEST_CASE("bucket index: a bucket written alone reads back in runs, one Read op for many writes") {
  TempDir dir;
  const auto buckets = make_buckets(1, 5000, 120);
  BucketIndex index(0);
  reactor::block_on(stage_all(store_config(dir, LogStore::segment_bytes_min), buckets, index));
  const Bucket& b = buckets[0];
  std::set<uint32_t> segments;
  for (uint64_t p = 0; p < b.folded.commit_end; p++) segments.insert(index.find(b.id, p)->segment);
  CHECK(segments.size() > 1);  // runs end at a segment's end
  reactor::block_on([&]() -> Task<void> {
    EntryReader reader({dir.path()}, index);
    co_await check_read_through(reader, buckets, 1000);
    CHECK(reader.stats().corrupt == 0);
    // Registers follow one another with their commits between: each op
    // reads several (staged after its first read through, the same writes
    // came one op each).
    CHECK(reader.stats().registers >= 3 * reader.stats().reads);
    // A limit of one entry reads one register.
    const EntryReader::Stats before = reader.stats();
    auto one = co_await reader.read(b.id, 0, 1, bytes_unbounded);
    REQUIRE(one.ok());
    CHECK(owned(*one) == slice(b.folded.log, 0, 1));
    CHECK(reader.stats().registers == before.registers + 1);
  }());
}

TEST_CASE("bucket index: damage on disk fails a read as corrupt, never as wrong entries") {
  TempDir dir;
  const auto buckets = make_buckets(3, 4000, 40);
  BucketIndex index(0);
  reactor::block_on(stage_all(store_config(dir, 64 * 1024), buckets, index));
  const Bucket& b = buckets[1];
  const IndexedWrite victim = *index.find(b.id, b.folded.commit_end / 2);
  const std::string path = segment_path(dir.path(), 0, victim.segment);
  const uint64_t record_end = victim.offset() + record_header_bytes + victim.payload_bytes;
  consensus::Prng prng(5);

  // The victim's read fails; a read across it fails; the writes before it
  // (and, unless the damage reached them, after it) still read.
  auto check_victim_fails = [&](bool rest_intact) {
    reactor::block_on([&]() -> Task<void> {
      EntryReader reader({dir.path()}, index);
      auto got = co_await reader.read(b.id, victim.first, victim.entries, bytes_unbounded);
      REQUIRE(!got.ok());
      CHECK(got.error() == ReadErrc::corrupt);
      CHECK(reader.stats().corrupt == 1);
      auto across = co_await reader.read(b.id, 0, 1000, bytes_unbounded);
      REQUIRE(!across.ok());
      CHECK(across.error() == ReadErrc::corrupt);
      if (victim.first > 0) {
        auto before = co_await reader.read(b.id, 0, victim.first, bytes_unbounded);
        REQUIRE(before.ok());
        CHECK(owned(*before) == slice(b.folded.log, 0, victim.first));
      }
      if (!rest_intact) co_return;
      auto after = co_await reader.read(b.id, victim.end(), 1000, bytes_unbounded);
      REQUIRE(after.ok());
      CHECK(owned(*after) == slice(b.folded.log, victim.end(), b.folded.commit_end - victim.end()));
    }());
  };

  SUBCASE("a flipped bit in the payload") {
    for (int i = 0; i < 8; i++) {
      const uint64_t at = victim.offset() + record_header_bytes + prng.below(victim.payload_bytes);
      const int bit = static_cast<int>(prng.below(8));
      flip_bit(path, at, bit);
      check_victim_fails(true);
      flip_bit(path, at, bit);  // mended for the next round
    }
  }
  SUBCASE("a flipped bit in the header") {
    for (uint64_t at = victim.offset(); at < victim.offset() + record_header_bytes; at += 5) {
      flip_bit(path, at, static_cast<int>(at % 8));
      check_victim_fails(true);
      flip_bit(path, at, static_cast<int>(at % 8));
    }
  }
  SUBCASE("another register copied over it (a misdirected write)") {
    const IndexedWrite other = *index.find(b.id, 0);
    REQUIRE(other.offset() != victim.offset());
    copy_between(segment_path(dir.path(), 0, other.segment), other.offset(), path,
                 victim.offset(), record_header_bytes + other.payload_bytes);
    check_victim_fails(record_bytes(other.payload_bytes) <= record_bytes(victim.payload_bytes));
  }
  SUBCASE("the file is cut inside the record") {
    REQUIRE(::truncate(path.c_str(), static_cast<off_t>(record_end - 1)) == 0);
    check_victim_fails(false);
  }
}

// ---- Summaries (segment_summary.h, recovery.h steps 4-5) ----

namespace {

// What one life of the log stages: steps [from, to) of every history, as
// stage_all does, with a checkpoint round (its marker, then each bucket's
// checkpoint of what was staged so far, as Core::checkpoint_round stages
// it) after every step i with i % round_every == round_every - 1. The
// store tells `config.sealed` of each durable seal.
struct Life {
  Resume resume;  // where the log goes on (recovery's), or a fresh log
  size_t from = 0;
  size_t to = SIZE_MAX;
  size_t round_every = 40;
  RoundPlace newest;  // out: the last round staged (0s: none)
};

Task<void> stage_with_rounds(LogStore::Config config, const std::vector<Bucket>& buckets,
                             BucketIndex& index, Life* life) {
  auto opened = LogStore::open(config, life->resume);
  REQUIRE(opened.ok());
  LogStore& store = **opened;
  const EngineImage empty;
  StoreStorage storage(store, empty, &index);
  std::map<uint32_t, consensus::PhaserDurable> images;
  size_t longest = 0;
  for (const Bucket& b : buckets) longest = std::max(longest, b.history.size());
  for (const Bucket& b : buckets) {
    for (size_t i = 0; i < life->from && i < b.history.size(); i++) images[b.id].apply(b.history[i]);
  }
  for (size_t i = life->from; i < std::min(longest, life->to); i++) {
    for (const Bucket& b : buckets) {
      if (i >= b.history.size()) continue;
      (void)storage.stage_phaser(b.id, {b.history[i]}, Flush::now);
      images[b.id].apply(b.history[i]);
    }
    if (i % life->round_every == life->round_every - 1) {
      (void)storage.stage_round_marker();
      for (const auto& [bucket, image] : images) {
        std::vector<EngineRecord> records;
        for (const PhaserRecord& r : consensus::checkpoint_records(image)) {
          records.push_back(encode_phaser_record(bucket, r));
        }
        (void)storage.stage_checkpoint(std::move(records));
      }
    }
    if (storage.overflowing()) co_await storage.drain_overflow();
  }
  co_await storage.drain_overflow();
  auto durable = co_await store.durable(storage.last_seq());
  CHECK(durable.ok());
  life->newest = storage.round_place();
  co_await store.close();
}

Task<void> stage_with_rounds(LogStore::Config config, const std::vector<Bucket>& buckets,
                             BucketIndex& index, size_t round_every, RoundPlace* newest) {
  Life life;
  life.round_every = round_every;
  co_await stage_with_rounds(std::move(config), buckets, index, &life);
  *newest = life.newest;
}

// What a start recovers: the index and the engine's image (the phasers'
// checkpoint encodings, comparable), as tools/coworker/main.cc replays.
struct Recovered {
  std::unique_ptr<BucketIndex> index = std::make_unique<BucketIndex>(0);
  EngineImage image;
  CoreReport report;
  uint64_t summaries_written = 0;
};

enum class Summaries : uint8_t { ignored, taken };

Recovered recover(const std::string& dir, Summaries summaries) {
  Recovered out;
  ReplayOptions options;
  if (summaries == Summaries::taken) {
    options.summaries = [&](const SegmentSummary& s) {
      return out.index->apply_summary(s.segment, s.events);
    };
    options.sealed = [&](const SealedSegment& sealed) {
      SegmentSummary summary = out.index->take_summary(sealed);
      if (!sealed.whole || sealed.summarized) return;
      REQUIRE(write_summary(dir, summary).ok());
      out.summaries_written++;
    };
  }
  Result<CoreReport> report = replay_core(
      dir, 0,
      [&](const ReplayedRecord& r) {
        if (r.feed == Feed::everything) out.image.apply(r.header, r.payload);
        if (r.header.bucket < participant_bucket ||
            r.header.kind == RecordKind::checkpoint_round) {
          out.index->on_replayed(r);
        }
      },
      options);
  REQUIRE(report.ok());
  CHECK(!report->corrupt());
  out.report = std::move(*report);
  return out;
}

std::vector<std::string> checkpoint_bytes(const EngineImage& image) {
  std::vector<std::string> out;
  for (const auto& [bucket, durable] : image.phasers) {
    for (const PhaserRecord& r : consensus::checkpoint_records(durable)) {
      out.push_back(encode_phaser_record(bucket, r).payload);
    }
  }
  return out;
}

void check_same_recovery(const Recovered& got, const Recovered& want,
                         const std::vector<Bucket>& buckets) {
  for (const Bucket& b : buckets) {
    CHECK(got.index->damaged(b.id) == want.index->damaged(b.id));
    CHECK(got.index->committed_end(b.id) == want.index->committed_end(b.id));
    CHECK(got.index->retained_start(b.id) == want.index->retained_start(b.id));
    REQUIRE(got.index->writes(b.id) == want.index->writes(b.id));
    for (consensus::Position p = 0; p < want.index->committed_end(b.id); p++) {
      REQUIRE(got.index->find(b.id, p) == want.index->find(b.id, p));
    }
  }
  CHECK(got.index->writes_total() == want.index->writes_total());
  CHECK(checkpoint_bytes(got.image) == checkpoint_bytes(want.image));
  CHECK(got.image.damaged_buckets.empty());
}

}  // namespace

TEST_CASE("bucket index: recovery takes segments below the newest round from their summaries") {
  TempDir dir;
  const std::vector<Bucket> buckets = make_buckets(5, 8080, 160);
  BucketIndex live(0);
  LogStore::Config config = store_config(dir, 64 * 1024);
  uint64_t written = 0;
  config.sealed = [&](const SealedSegment& sealed) {
    CHECK(sealed.whole);
    REQUIRE(write_summary(dir.path(), live.take_summary(sealed)).ok());
    written++;
  };
  RoundPlace newest;
  reactor::block_on(stage_with_rounds(config, buckets, live, 40, &newest));
  check_index(live, buckets);
  // Named once durable, as the core names it (segment_summary.h).
  auto name = [&](const RoundPlace& place) { REQUIRE(write_round(dir.path(), 0, place).ok()); };
  name(newest);

  const Recovered full = recover(dir.path(), Summaries::ignored);
  check_index(*full.index, buckets);
  CHECK(full.report.summarized == 0);
  const uint64_t segments = full.report.segments;
  REQUIRE(segments >= 8);
  CHECK(written + 2 == segments);  // every sealed one got one (not the current, the prepared)
  REQUIRE(newest.segment == segments - 1);  // the current one (the last is prepared ahead)

  // Every segment below the named round's is taken from its summary.
  const Recovered summarized = recover(dir.path(), Summaries::taken);
  INFO("segments " << segments << ", summarized " << summarized.report.summarized);
  CHECK(summarized.report.summarized == segments - 2);
  CHECK(summarized.report.records < full.report.records / 4);
  check_same_recovery(summarized, full, buckets);
  CHECK(summarized.summaries_written == 0);  // each one there already

  SUBCASE("a round named wrongly, or not at all: every segment is read") {
    for (RoundPlace wrong : {RoundPlace{newest.segment, newest.offset, newest.seq + 1},
                             RoundPlace{newest.segment, newest.offset + 8, newest.seq}}) {
      name(wrong);
      const Recovered again = recover(dir.path(), Summaries::taken);
      CHECK(again.report.summarized == 0);
      CHECK(again.summaries_written == 0);  // read, but each one there already
      check_same_recovery(again, full, buckets);
    }
    ::unlink(round_path(dir.path(), 0).c_str());
    const Recovered unnamed = recover(dir.path(), Summaries::taken);
    CHECK(unnamed.report.summarized == 0);
    check_same_recovery(unnamed, full, buckets);
  }
  SUBCASE("a damaged summary: that segment is read, the others are still taken") {
    const uint64_t victim = 1 + segments / 2;
    const std::string path = summary_path(dir.path(), 0, victim);
    flip_bit(path, 60, 3);
    const Recovered again = recover(dir.path(), Summaries::taken);
    CHECK(again.report.summarized == segments - 3);
    check_same_recovery(again, full, buckets);
    // The segment read whole got its summary back.
    CHECK(again.summaries_written == 1);
    const Recovered mended = recover(dir.path(), Summaries::taken);
    CHECK(mended.report.summarized == segments - 2);
    check_same_recovery(mended, full, buckets);
  }
  SUBCASE("a summary of another life of its segment (another first seq) is not taken") {
    const uint64_t victim = 2;
    Result<std::optional<SegmentSummary>> s = read_summary(dir.path(), 0, victim);
    REQUIRE(s.ok());
    REQUIRE(s->has_value());
    SegmentSummary stale = **s;
    stale.first_seq += 1;
    stale.seal_seq += 1;
    REQUIRE(write_summary(dir.path(), stale).ok());
    const Recovered again = recover(dir.path(), Summaries::taken);
    CHECK(again.report.summarized == segments - 3);
    check_same_recovery(again, full, buckets);
  }
  SUBCASE("without summaries a start writes them, and the next start takes them") {
    for (uint64_t s = 1; s <= segments; s++) ::unlink(summary_path(dir.path(), 0, s).c_str());
    const Recovered first = recover(dir.path(), Summaries::taken);
    CHECK(first.report.summarized == 0);
    CHECK(first.summaries_written + 2 == segments);
    check_same_recovery(first, full, buckets);
    const Recovered second = recover(dir.path(), Summaries::taken);
    CHECK(second.report.summarized == segments - 2);
    check_same_recovery(second, full, buckets);
  }
  SUBCASE("a summary whose events were tampered with (checksum recomputed) damages, never asserts") {
    Result<std::optional<SegmentSummary>> s = read_summary(dir.path(), 0, 2);
    REQUIRE(s.ok());
    REQUIRE(s->has_value());
    SegmentSummary bad = **s;
    REQUIRE(bad.events.size() > 40);
    bad.events.resize(bad.events.size() - 3);  // a cut event: does not parse, not taken
    REQUIRE(write_summary(dir.path(), bad).ok());
    const Recovered again = recover(dir.path(), Summaries::taken);
    CHECK(again.report.summarized == segments - 3);
    check_same_recovery(again, full, buckets);
  }
}

TEST_CASE("bucket index: a round cut short by a crash after its segment's seal is never folded from") {
  // Many buckets make a round larger than a batch: it goes on past a seal
  // into later batches. A crash may lose those while the sealed segment's
  // summary (written once the seal's batch was durable) says it holds a round.
  TempDir dir;
  const std::vector<Bucket> buckets = make_buckets(48, 7070, 30);
  BucketIndex live(0);
  LogStore::Config config = store_config(dir, 64 * 1024);
  config.batch_bytes_max = 16 * 1024;
  config.sealed = [&](const SealedSegment& sealed) {
    REQUIRE(write_summary(dir.path(), live.take_summary(sealed)).ok());
  };
  RoundPlace newest;
  reactor::block_on(stage_with_rounds(config, buckets, live, 7, &newest));
  // A round whose marker is the last in its segment S and whose checkpoints
  // go on in S+1 past the seal's batch.
  const ReplayResult all = replay_all(dir.path());
  std::optional<uint64_t> cut_segment;
  uint64_t cut_offset = 0;
  std::optional<RoundPlace> whole;  // the round before the one cut: named once durable
  for (size_t i = 0; i < all.records.size() && !cut_segment; i++) {
    const Replayed& marker = all.records[i];
    if (marker.kind != RecordKind::checkpoint_round) continue;
    if (i > 0 && marker.segment > all.records.front().segment + 1) {
      // Not the first round: one is named before it (and its segment is
      // not the first, so summaries below it may be taken).
      for (size_t j = i; j-- > 0;) {
        const Replayed& before = all.records[j];
        if (before.kind != RecordKind::checkpoint_round) continue;
        whole = RoundPlace{before.segment, before.offset, before.seq};
        break;
      }
    }
    const uint64_t s = marker.segment;
    std::optional<uint64_t> next_batch;  // the seal's batch: S+1's first record's
    for (size_t j = i + 1; j < all.records.size(); j++) {
      const Replayed& r = all.records[j];
      if (r.kind == RecordKind::checkpoint_round || r.segment > s + 1) break;
      if (r.segment != s + 1) continue;
      if (!next_batch) next_batch = r.batch_first_seq;
      if (r.batch_first_seq != *next_batch && r.kind == RecordKind::bucket_checkpoint &&
          whole && whole->segment > 1) {
        cut_segment = s + 1;
        cut_offset = r.offset;  // this batch and everything after it: lost
        break;
      }
    }
  }
  REQUIRE(cut_segment.has_value());
  const std::string path = segment_path(dir.path(), 0, *cut_segment);
  zero_range(path, cut_offset, 64 * 1024 - cut_offset);
  for (uint64_t s = *cut_segment + 1; ::unlink(segment_path(dir.path(), 0, s).c_str()) == 0; s++) {
  }
  for (uint64_t s = *cut_segment; s < *cut_segment + 100; s++) {
    ::unlink(summary_path(dir.path(), 0, s).c_str());
  }
  REQUIRE(write_round(dir.path(), 0, *whole).ok());

  const Recovered full = recover(dir.path(), Summaries::ignored);
  const Recovered summarized = recover(dir.path(), Summaries::taken);
  INFO("cut in segment " << *cut_segment << " at " << cut_offset << ", summarized "
                         << summarized.report.summarized);
  CHECK(summarized.report.summarized > 0);
  check_same_recovery(summarized, full, buckets);
}

// Two lives of a core's log: a crash cuts the first life's last round A
// short (its first checkpoint kept, the rest lost with the torn batch); the
// next life writes after it, then round B in the same segment, and names B.
// A start must fold from B, never from A, which lacks some buckets'
// checkpoints: their writes after the restart would not fit, and the
// participant would repair what is not damaged (recovery.h step 4).
TEST_CASE("bucket index: a round a crash cut short is not folded from when the next life's round follows it") {
  TempDir dir;
  const std::vector<Bucket> buckets = make_buckets(6, 9090, 60);
  BucketIndex first_index(0);
  BucketIndex* live = &first_index;  // the live index of the life being staged
  LogStore::Config config = store_config(dir, 64 * 1024);
  config.sealed = [&](const SealedSegment& sealed) {
    REQUIRE(write_summary(dir.path(), live->take_summary(sealed)).ok());
  };
  // Life 1: rounds every 10 steps, the last one after step 39, then nothing.
  Life first;
  first.to = 40;
  first.round_every = 10;
  reactor::block_on(stage_with_rounds(config, buckets, *live, &first));
  const ReplayResult all = replay_all(dir.path());
  std::vector<const Replayed*> markers;
  for (const Replayed& r : all.records) {
    if (r.kind == RecordKind::checkpoint_round) markers.push_back(&r);
  }
  REQUIRE(markers.size() == 4);
  const Replayed& a = *markers.back();
  const Replayed& before = *markers[markers.size() - 2];
  REQUIRE(a.segment >= 2);  // summaries may be taken below it
  // The crash: A's second checkpoint and everything after it never became
  // durable (zeros, as a torn last batch recovery cuts).
  std::optional<uint64_t> cut;
  uint64_t checkpoints = 0;
  for (const Replayed& r : all.records) {
    if (r.seq <= a.seq || r.kind != RecordKind::bucket_checkpoint) continue;
    if (++checkpoints == 2) {
      REQUIRE(r.segment == a.segment);
      cut = r.offset;
      break;
    }
  }
  REQUIRE(cut.has_value());
  zero_range(segment_path(dir.path(), 0, a.segment), *cut, config.segment_bytes - *cut);
  for (uint64_t s = a.segment + 1; ::unlink(segment_path(dir.path(), 0, s).c_str()) == 0; s++) {
  }
  ::unlink(summary_path(dir.path(), 0, a.segment).c_str());
  // The round before A was durable whole: the core named it.
  REQUIRE(write_round(dir.path(), 0, RoundPlace{before.segment, before.offset, before.seq}).ok());

  // The restart: recovery, then life 2 from step 40 with its first round
  // after step 42, in A's segment, durable and named.
  Recovered restart = recover(dir.path(), Summaries::taken);
  CHECK(restart.image.damaged_buckets.empty());
  live = restart.index.get();
  Life second;
  second.resume = restart.report.resume;
  second.from = 40;
  second.to = 45;
  second.round_every = 43;
  reactor::block_on(stage_with_rounds(config, buckets, *live, &second));
  REQUIRE(second.newest.seq > a.seq);
  REQUIRE(second.newest.segment == a.segment);
  REQUIRE(write_round(dir.path(), 0, second.newest).ok());

  // Every record folded from the start is the truth here: a log from
  // segment 1 holds every bucket's whole history.
  const Recovered full = recover(dir.path(), Summaries::ignored);
  const Recovered summarized = recover(dir.path(), Summaries::taken);
  CHECK(summarized.report.summarized == a.segment - 1);
  check_same_recovery(summarized, full, buckets);
  for (const Bucket& b : buckets) CHECK(!summarized.index->damaged(b.id));
}
