// The log store on real files: group commit, back-pressure, segment
// rollover, reopening, and the preparation modes.
#include <doctest/doctest.h>

#include <memory>
#include <string>
#include <vector>

#include "bucket/log_store.h"
#include "reactor/block_on.h"
#include "reactor/sync.h"
#include "tests/bucket/log_test_util.h"

using namespace coworker;
using namespace coworker::bucket;
using namespace coworker::bucket::testing;
using coworker::reactor::Task;

namespace {

LogStore::Config small_config(const std::string& dir, unsigned core = 0) {
  LogStore::Config config;
  config.dir = dir;
  config.core = core;
  config.segment_bytes = 64 * 1024;
  config.batch_bytes_max = 32 * 1024;
  return config;
}

// Recovers the core's log, then opens it (on the current loop).
std::unique_ptr<LogStore> reopen(const LogStore::Config& config) {
  Result<CoreReport> report = replay_core(config.dir, config.core, [](const ReplayedRecord&) {});
  COWORKER_ASSERT(report.ok());
  Result<std::unique_ptr<LogStore>> store = LogStore::open(config, report->resume);
  COWORKER_ASSERT(store.ok());
  return std::move(*store);
}

RecordMeta meta_for(uint64_t i) {
  RecordMeta meta;
  meta.kind = i % 3 == 0 ? RecordKind::entry : (i % 3 == 1 ? RecordKind::register_write
                                                             : RecordKind::promise);
  meta.bucket = static_cast<uint32_t>(i % 64);
  meta.position = i * 10;
  meta.promise = Promise{i, static_cast<uint32_t>(i % 7)};
  return meta;
}

// Appends `count` records with keys base.. concurrently from `appenders`
// coroutines; returns when every one is durable.
Task<void> append_many(LogStore& store, uint64_t base, int count, int appenders, size_t length) {
  auto one = [&](int a) -> Task<void> {
    for (int i = a; i < count; i += appenders) {
      const uint64_t key = base + static_cast<uint64_t>(i);
      const std::string payload = make_payload(key, length + key % 17);
      Result<uint64_t, LogErrc> seq = co_await store.append(meta_for(key), payload);
      COWORKER_ASSERT(seq.ok());
      COWORKER_ASSERT(store.durable_seq() >= *seq);  // resumed only once durable
    }
  };
  reactor::TaskGroup group;
  for (int a = 0; a < appenders; a++) group.spawn(one(a));
  co_await group.join();
}

void check_keys(const ReplayResult& replayed, uint64_t first, uint64_t count) {
  std::vector<bool> seen(count, false);
  for (const Replayed& r : replayed.records) {
    REQUIRE(payload_self_consistent(r.payload));
    const uint64_t key = payload_key(r.payload);
    REQUIRE(key >= first);
    REQUIRE(key < first + count);
    CHECK(!seen[key - first]);
    seen[key - first] = true;
    const RecordMeta meta = meta_for(key);
    CHECK(r.kind == meta.kind);
    CHECK(r.bucket == meta.bucket);
    CHECK(r.position == meta.position);
  }
  for (uint64_t i = 0; i < count; i++) CHECK(seen[i]);
}

}  // namespace

TEST_CASE("log store: appended records replay in order with their headers") {
  TempDir dir;
  const LogStore::Config config = small_config(dir.path());
  reactor::block_on([&]() -> Task<void> {
    auto store = reopen(config);
    co_await append_many(*store, 0, 200, 1, 100);
    CHECK(store->next_seq() > 200);
    co_await store->close();
  }());
  ReplayResult replayed = replay_all(dir.path());
  REQUIRE(replayed.recovery.cores.size() == 1);
  const CoreReport& report = replayed.recovery.cores[0];
  CHECK(!report.corrupt());
  CHECK(!report.torn);
  CHECK(report.records == 200);
  check_keys(replayed, 0, 200);
  for (size_t i = 1; i < replayed.records.size(); i++) {
    CHECK(replayed.records[i].seq > replayed.records[i - 1].seq);
  }
}

TEST_CASE("log store: 64 appenders in one turn share one write and one fdatasync") {
  TempDir dir;
  LogStore::Config config = small_config(dir.path());
  config.segment_bytes = 1 << 20;
  reactor::block_on([&]() -> Task<void> {
    auto store = reopen(config);
    REQUIRE((co_await store->durable(store->boot_seq())).ok());  // the boot record's batch
    const LogStore::Stats opened = store->stats();
    CHECK(opened.batches == 1);
    CHECK(!store->flush_started().has_value());
    co_await append_many(*store, 0, 64, 64, 100);
    CHECK(!store->flush_started().has_value());
    CHECK(store->stats().batches == opened.batches + 1);
    CHECK(store->stats().fdatasyncs == opened.fdatasyncs + 1);
    co_await append_many(*store, 64, 640, 64, 100);
    // Every batch after the first carries what was staged during the previous one.
    CHECK(store->stats().batches < 64);
    co_await store->close();
  }());
  check_keys(replay_all(dir.path()), 0, 704);
}

TEST_CASE("log store: a full batch buffer pushes back on appenders, nothing is lost") {
  TempDir dir;
  LogStore::Config config = small_config(dir.path());
  config.batch_bytes_max = 8 * 1024;
  reactor::block_on([&]() -> Task<void> {
    auto store = reopen(config);
    co_await append_many(*store, 0, 512, 64, 1000);
    CHECK(store->stats().full > 0);
    CHECK(store->stats().records == store->next_seq() - 1 - 0);
    co_await store->close();
  }());
  check_keys(replay_all(dir.path()), 0, 512);
}

TEST_CASE("log store: records roll over into prepared segments, which are sealed") {
  TempDir dir;
  const LogStore::Config config = small_config(dir.path());
  reactor::block_on([&]() -> Task<void> {
    auto store = reopen(config);
    co_await append_many(*store, 0, 600, 8, 900);
    CHECK(store->stats().segments_prepared >= 8);
    co_await store->close();
  }());
  ReplayResult replayed = replay_all(dir.path());
  CHECK(replayed.recovery.cores[0].segments >= 9);
  CHECK(!replayed.recovery.cores[0].corrupt());
  CHECK(!replayed.recovery.cores[0].torn);
  check_keys(replayed, 0, 600);
}

TEST_CASE("log store: reopening continues the log after recovery, seq without gaps") {
  TempDir dir;
  const LogStore::Config config = small_config(dir.path());
  for (int round = 0; round < 4; round++) {
    reactor::block_on([&]() -> Task<void> {
      auto store = reopen(config);
      co_await append_many(*store, static_cast<uint64_t>(round) * 100, 100, 4, 300);
      co_await store->close();
    }());
  }
  ReplayResult replayed = replay_all(dir.path());
  CHECK(!replayed.recovery.cores[0].corrupt());
  CHECK(!replayed.recovery.cores[0].torn);
  check_keys(replayed, 0, 400);
}

TEST_CASE("log store: a restart with another --segment-bytes continues the log") {
  TempDir dir;
  int round = 0;
  for (uint64_t segment_bytes : {64 * 1024, 16 * 1024, 48 * 1024}) {
    LogStore::Config config = small_config(dir.path());
    config.segment_bytes = segment_bytes;
    config.batch_bytes_max = 8 * 1024;
    reactor::block_on([&]() -> Task<void> {
      auto store = reopen(config);
      co_await append_many(*store, static_cast<uint64_t>(round) * 100, 100, 4, 400);
      co_await store->close();
    }());
    round++;
  }
  ReplayResult replayed = replay_all(dir.path());
  CHECK(!replayed.recovery.cores[0].corrupt());
  CHECK(!replayed.recovery.cores[0].torn);
  check_keys(replayed, 0, 300);
}

TEST_CASE("log store: oversized payloads are refused, membership records only on core 0") {
  TempDir dir;
  const LogStore::Config config = small_config(dir.path());
  reactor::block_on([&]() -> Task<void> {
    auto store = reopen(config);
    const std::string huge(store->payload_bytes_max() + 1, 'x');
    Result<uint64_t, LogErrc> refused = co_await store->append(RecordMeta{}, huge);
    CHECK(!refused.ok());
    if (!refused.ok()) CHECK(refused.error() == LogErrc::too_large);
    const std::string largest = make_payload(1, store->payload_bytes_max());
    Result<uint64_t, LogErrc> fits = co_await store->append(RecordMeta{}, largest);
    CHECK(fits.ok());
    RecordMeta membership{RecordKind::membership, membership_bucket, 5, Promise{5, 1}};
    Result<uint64_t, LogErrc> m = co_await store->append(membership, make_payload(2, 40));
    CHECK(m.ok());
    co_await store->close();
    Result<uint64_t, LogErrc> late = store->stage(RecordMeta{}, largest);
    CHECK(!late.ok());
  }());
  ReplayResult replayed = replay_all(dir.path());
  REQUIRE(replayed.records.size() == 2);
  CHECK(replayed.records[1].kind == RecordKind::membership);
  CHECK(replayed.records[1].bucket == membership_bucket);
}

TEST_CASE("log store: staged payload parts are gathered into one record") {
  TempDir dir;
  const LogStore::Config config = small_config(dir.path());
  const std::string whole = make_payload(77, 500);
  reactor::block_on([&]() -> Task<void> {
    auto store = reopen(config);
    const std::span<const char> parts[3] = {std::span<const char>(whole).subspan(0, 10),
                                            std::span<const char>(whole).subspan(10, 300),
                                            std::span<const char>(whole).subspan(310)};
    Result<uint64_t, LogErrc> seq = store->stage(meta_for(77), parts);
    REQUIRE(seq.ok());
    Result<void, LogErrc> done = co_await store->durable(*seq);
    CHECK(done.ok());
    co_await store->close();
  }());
  ReplayResult replayed = replay_all(dir.path());
  REQUIRE(replayed.records.size() == 1);
  CHECK(replayed.records[0].payload == whole);
}

TEST_CASE("log store: a Flush::with_next record waits for a record staged now, a waiter or "
          "flush_lazy") {
  TempDir dir;
  const LogStore::Config config = small_config(dir.path());
  const std::string payloads[4] = {make_payload(1, 100), make_payload(2, 100),
                                   make_payload(3, 100), make_payload(4, 100)};
  reactor::block_on([&]() -> Task<void> {
    auto store = reopen(config);
    REQUIRE((co_await store->durable(store->boot_seq())).ok());
    // Turns enough for a woken flusher to take a batch, write and sync it.
    auto idle = [&]() -> Task<void> {
      for (int i = 0; i < 64 && !store->flush_started(); i++) co_await reactor::Yield{};
    };
    const uint64_t batches = store->stats().batches;
    // 1. Alone, it does not start a batch...
    Result<uint64_t, LogErrc> lazy = store->stage(meta_for(1), payloads[0], Flush::with_next);
    REQUIRE(lazy.ok());
    co_await idle();
    CHECK(!store->flush_started().has_value());
    CHECK(store->durable_seq() < *lazy);
    // ...and rides with the next record staged now: one batch for both.
    Result<uint64_t, LogErrc> now = store->stage(meta_for(2), payloads[1]);
    REQUIRE(now.ok());
    REQUIRE((co_await store->durable(*now)).ok());
    CHECK(store->durable_seq() >= *lazy);
    CHECK(store->stats().batches == batches + 1);
    // 2. flush_lazy() lets it go.
    lazy = store->stage(meta_for(3), payloads[2], Flush::with_next);
    REQUIRE(lazy.ok());
    co_await idle();
    CHECK(store->durable_seq() < *lazy);
    store->flush_lazy();
    REQUIRE((co_await store->durable(*lazy)).ok());
    CHECK(store->stats().batches == batches + 2);
    // 3. So does a waiter for it.
    lazy = store->stage(meta_for(4), payloads[3], Flush::with_next);
    REQUIRE(lazy.ok());
    REQUIRE((co_await store->durable(*lazy)).ok());
    CHECK(store->stats().batches == batches + 3);
    co_await store->close();
  }());
  check_keys(replay_all(dir.path()), 1, 4);
}

TEST_CASE("log store: every preparation mode and sync mode writes a replayable log") {
  for (Prepare prepare : {Prepare::zero_fill, Prepare::fallocate, Prepare::none, Prepare::recycle}) {
    for (Sync sync : {Sync::always, Sync::none}) {
      CAPTURE(prepare_name(prepare));
      TempDir dir;
      LogStore::Config config = small_config(dir.path());
      config.prepare = prepare;
      config.sync = sync;
      for (int round = 0; round < 2; round++) {
        reactor::block_on([&]() -> Task<void> {
          auto store = reopen(config);
          co_await append_many(*store, static_cast<uint64_t>(round) * 150, 150, 4, 700);
          if (sync == Sync::none) CHECK(store->stats().fdatasyncs == 0);
          co_await store->close();
        }());
      }
      ReplayResult replayed = replay_all(dir.path());
      CHECK(!replayed.recovery.cores[0].corrupt());
      CHECK(!replayed.recovery.cores[0].torn);
      check_keys(replayed, 0, 300);
    }
  }
}

TEST_CASE("log store: every core's log is replayed, whatever the core count is now") {
  TempDir dir;
  reactor::block_on([&]() -> Task<void> {
    // Three cores' logs written by one loop stand in for a run with --cores 3.
    std::vector<std::unique_ptr<LogStore>> stores;
    for (unsigned core = 0; core < 3; core++) stores.push_back(reopen(small_config(dir.path(), core)));
    for (unsigned core = 0; core < 3; core++) {
      co_await append_many(*stores[core], core * 1000, 50, 2, 200);
    }
    for (auto& store : stores) co_await store->close();
  }());
  ReplayResult replayed = replay_all(dir.path());
  REQUIRE(replayed.recovery.cores.size() == 3);
  for (unsigned core = 0; core < 3; core++) {
    CHECK(replayed.recovery.cores[core].core == core);
    CHECK(replayed.recovery.cores[core].records == 50);
  }
  for (const Replayed& r : replayed.records) CHECK(payload_key(r.payload) / 1000 == r.core);
  CHECK(replayed.recovery.core(7).resume.next_seq == 1);  // a core with no log yet
}

TEST_CASE("log store: command-line spellings of --sync and the preparation method") {
  CHECK(parse_sync("always") == std::optional<Sync>(Sync::always));
  CHECK(parse_sync("none") == std::optional<Sync>(Sync::none));
  CHECK(!parse_sync("sometimes").has_value());
  CHECK(parse_prepare("zero_fill") == std::optional<Prepare>(Prepare::zero_fill));
  CHECK(parse_prepare("fallocate") == std::optional<Prepare>(Prepare::fallocate));
  CHECK(parse_prepare("none") == std::optional<Prepare>(Prepare::none));
  CHECK(parse_prepare("recycle") == std::optional<Prepare>(Prepare::recycle));
  CHECK(!parse_prepare("zeros").has_value());
  CHECK(std::string(sync_name(Sync::none)) == "none");
}

// Retention (DESIGN §6, segment.h): a roll begins a segment; retire deletes
// the segments below a kept one behind a durable marker; recovery reads the
// log from the kept segment on, with seqs continuing, and finishes a
// retirement a crash interrupted.
TEST_CASE("log store: retention deletes whole segments from the front behind a marker") {
  TempDir dir;
  const LogStore::Config config = small_config(dir.path());
  uint64_t kept = 0;
  reactor::block_on([&]() -> Task<void> {
    auto store = reopen(config);
    co_await append_many(*store, 0, 400, 4, 300);  // several 64 KiB segments
    REQUIRE(store->segment() >= 3);
    CHECK(store->first_segment() == 1);
    // Nothing is past retention with no limit; by bytes, whatever lies
    // below the newest `bytes_max` of log (the segment being filled counts).
    CHECK(store->retention_target(UINT64_MAX, UINT64_MAX, 0) == 1);
    CHECK(store->retention_target(config.segment_bytes, UINT64_MAX, 0) == store->segment());
    CHECK(store->retention_target(2 * config.segment_bytes, UINT64_MAX, 0) ==
          store->segment() - 1);
    // By age: everything sealed before "now" plus a day is past a day's age.
    CHECK(store->retention_target(UINT64_MAX, 1, int64_t{1} << 62) == store->segment());
    kept = store->segment();
    Status retired = co_await store->retire(kept);
    CHECK(retired.ok());
    CHECK(store->first_segment() == kept);
    CHECK(store->stats().segments_retired == kept - 1);
    co_await append_many(*store, 2000, 50, 2, 100);
    co_await store->close();
  }());
  for (uint64_t s = 1; s < kept; s++) CHECK(!file_exists(segment_path(dir.path(), 0, s)));
  ReplayResult replayed = replay_all(dir.path());
  const CoreReport& report = replayed.recovery.cores[0];
  CHECK(report.resume.first_segment == kept);
  // No checkpoint round in what is kept: nothing is folded, all is suspect.
  CHECK(report.corrupt());
  CHECK(report.unattributed);
  CHECK(replayed.records.empty());

  // A crash after the marker, before the files went: recovery skips what
  // lies below it and the store deletes it at open.
  REQUIRE(write_file(segment_path(dir.path(), 0, 1), std::string(4096, '\0')));
  reactor::block_on([&]() -> Task<void> {
    auto store = reopen(config);
    CHECK(store->first_segment() == kept);
    co_await store->close();
  }());
  CHECK(!file_exists(segment_path(dir.path(), 0, 1)));

  // A marker naming a segment that is gone: the front is missing (corruption).
  REQUIRE(write_file(retained_path(dir.path(), 0), retained_text(kept - 1)));
  CHECK(replay_all(dir.path()).recovery.cores[0].corrupt());
  // An unreadable marker: the same, from segment 1.
  REQUIRE(write_file(retained_path(dir.path(), 0), "garbage"));
  const CoreReport damaged = replay_all(dir.path()).recovery.cores[0];
  CHECK(damaged.corrupt());
  CHECK(damaged.damages[0].what == Damage::What::missing_segment);
  // A marker whose index was flipped fails its checksum: nothing is deleted.
  std::string flipped = retained_text(kept);
  flipped[15] = flipped[15] == '9' ? '8' : '9';
  REQUIRE(write_file(retained_path(dir.path(), 0), flipped));
  CHECK(replay_all(dir.path()).recovery.cores[0].corrupt());
  CHECK(file_exists(segment_path(dir.path(), 0, kept)));
  // A valid marker above every segment would delete them all: damage instead.
  REQUIRE(write_file(retained_path(dir.path(), 0), retained_text(kept + 100)));
  const CoreReport above = replay_all(dir.path()).recovery.cores[0];
  CHECK(above.corrupt());
  CHECK(above.resume.retire.empty());
}

// A checkpoint round's marker, durable; `named`: the core names it then
// (segment_summary.h, the `round` file).
enum class Named : uint8_t { no, yes };
Task<void> append_round(LogStore& store, const std::string& dir, Named named) {
  RecordMeta marker;
  marker.kind = RecordKind::checkpoint_round;
  marker.bucket = participant_bucket;
  const std::string one(1, '\1');
  Result<uint64_t, LogErrc> seq = store.stage(marker, one);
  REQUIRE(seq.ok());
  const auto [segment, offset] = store.last_location();
  REQUIRE((co_await store.durable(*seq)).ok());
  if (named == Named::yes) REQUIRE(write_round(dir, 0, RoundPlace{segment, offset, *seq}).ok());
}

// Recovery.h step 4: a retained log is handed over from its first whole
// round: one the `round` file names, or one the next marker follows in the
// same life of the log (no boot record between them).
TEST_CASE("log store: a retained log is folded from its first whole checkpoint round on") {
  TempDir dir;
  const LogStore::Config config = small_config(dir.path());
  uint64_t kept = 0;
  // One life: 400 records in several segments, then 10 in `kept`; a round
  // (named or not), 50 records, a second round when asked; then the
  // segments below `kept` retired.
  enum class Second : uint8_t { no, yes };
  auto first_life = [&](Named named, Second second) {
    reactor::block_on([&]() -> Task<void> {
      auto store = reopen(config);
      co_await append_many(*store, 0, 400, 4, 300);
      kept = store->segment();
      co_await append_many(*store, 1000, 10, 1, 100);
      co_await append_round(*store, dir.path(), named);
      co_await append_many(*store, 2000, 50, 2, 100);
      if (second == Second::yes) co_await append_round(*store, dir.path(), Named::no);
      REQUIRE((co_await store->retire(kept)).ok());
      co_await store->close();
    }());
  };
  auto check_from = [&](uint64_t first_key, size_t records) {
    ReplayResult replayed = replay_all(dir.path());
    const CoreReport& report = replayed.recovery.cores[0];
    CHECK(!report.corrupt());
    CHECK(report.resume.first_segment == kept);
    REQUIRE(replayed.records.size() == records);  // the marker, then what follows it
    CHECK(replayed.records[0].kind == RecordKind::checkpoint_round);
    for (size_t i = 1; i < replayed.records.size(); i++) {
      if (replayed.records[i].kind == RecordKind::checkpoint_round) continue;
      CHECK(payload_key(replayed.records[i].payload) >= first_key);
    }
  };
  SUBCASE("named") {
    first_life(Named::yes, Second::no);
    check_from(2000, 51);
  }
  SUBCASE("not named, the next round in the same life") {
    first_life(Named::no, Second::yes);
    check_from(2000, 52);
  }
  SUBCASE("not named, alone: no whole round, the front is damage") {
    first_life(Named::no, Second::no);
    ReplayResult replayed = replay_all(dir.path());
    CHECK(replayed.recovery.cores[0].corrupt());
    CHECK(replayed.recovery.cores[0].unattributed);
    CHECK(replayed.records.empty());
  }
  // The next life: 20 records, a round it names, 30 records.
  auto second_life = [&]() {
    reactor::block_on([&]() -> Task<void> {
      auto store = reopen(config);
      co_await append_many(*store, 3000, 20, 2, 100);
      co_await append_round(*store, dir.path(), Named::yes);
      co_await append_many(*store, 4000, 30, 2, 100);
      co_await store->close();
    }());
  };
  SUBCASE("a restart between two rounds: the first is not shown whole by the second") {
    // As after a crash that cut the first round short: the next life's
    // round follows a boot record.
    first_life(Named::no, Second::no);
    second_life();
    check_from(4000, 31);
  }
  SUBCASE("no whole round: the next life's records are handed over from its boot record") {
    // Recovery.h step 4b. The front is damage at every recovery, but the
    // life after it keeps its records through restarts (the repair's, in
    // a participant) until it names a round.
    first_life(Named::no, Second::no);
    auto life = [&](uint64_t first_key) {
      reactor::block_on([&]() -> Task<void> {
        auto store = reopen(config);
        co_await append_many(*store, first_key, 20, 2, 100);
        co_await store->close();
      }());
    };
    life(3000);
    life(5000);
    ReplayResult replayed = replay_all(dir.path());
    const CoreReport& report = replayed.recovery.cores[0];
    CHECK(report.corrupt());
    CHECK(report.unattributed);
    CHECK(!report.resume.image_from_boot);
    REQUIRE(replayed.records.size() == 40);
    CHECK(payload_key(replayed.records.front().payload) == 3000);
    CHECK(payload_key(replayed.records.back().payload) == 5019);
    // A named round after it: folded from the round, no damage left.
    second_life();
    check_from(4000, 31);
  }
  SUBCASE("a restart after a named round names it in its boot record: it stays whole") {
    // Retention relied on the first life's round; the next life names a
    // later one. The first stays whole (its boot record says so), so the
    // records after it stay readable.
    first_life(Named::yes, Second::no);
    second_life();
    check_from(2000, 102);
  }
}

// Prepare::recycle (segment.h): the newest retired segments are kept as
// `.free` files and renamed into place as the next segments; their old
// records, behind the new ones and in the segment prepared ahead, never pass
// for records of the new index — recovery reads a clean end, no damage, no
// torn tail — and a restart adopts the free files it finds.
TEST_CASE("log store: retired segments are recycled as the next ones, their old records never read") {
  TempDir dir;
  LogStore::Config config = small_config(dir.path());
  config.prepare = Prepare::recycle;
  uint64_t kept = 0;
  uint64_t recycled = 0;
  reactor::block_on([&]() -> Task<void> {
    auto store = reopen(config);
    co_await append_many(*store, 0, 400, 4, 600);  // several 64 KiB segments
    kept = store->segment();
    REQUIRE(kept >= 4);
    co_await append_round(*store, dir.path(), Named::yes);
    REQUIRE((co_await store->retire(kept)).ok());
    CHECK(store->stats().segments_retired == kept - 1);
    CHECK(list_free(dir.path(), 0)->size() == 2);  // the newest two kept
    CHECK(!file_exists(segment_path(dir.path(), 0, kept - 1)));
    CHECK(store->disk_bytes() >= 3 * config.segment_bytes);
    co_await append_many(*store, 1000, 400, 4, 600);  // rolls into them
    recycled = store->stats().segments_recycled;
    CHECK(recycled == 2);
    CHECK(list_free(dir.path(), 0)->empty());
    co_await store->close();
  }());
  ReplayResult replayed = replay_all(dir.path());
  const CoreReport& report = replayed.recovery.cores[0];
  CHECK(!report.corrupt());
  CHECK(!report.torn.has_value());
  REQUIRE(replayed.records.size() == 401);  // the round, then every record after it
  for (size_t i = 1; i < replayed.records.size(); i++) {
    CHECK(payload_key(replayed.records[i].payload) >= 1000);
    CHECK(payload_self_consistent(replayed.records[i].payload));
  }

  // Retire again, close with free files on disk: the next open adopts them.
  uint64_t kept_again = 0;
  reactor::block_on([&]() -> Task<void> {
    auto store = reopen(config);
    kept_again = store->segment();
    co_await append_round(*store, dir.path(), Named::yes);
    REQUIRE((co_await store->retire(kept_again)).ok());
    co_await store->close();
  }());
  REQUIRE(list_free(dir.path(), 0)->size() == 2);
  reactor::block_on([&]() -> Task<void> {
    auto store = reopen(config);
    co_await append_many(*store, 5000, 400, 4, 600);
    CHECK(store->stats().segments_recycled == 2);
    co_await store->close();
  }());
  const ReplayResult again = replay_all(dir.path());
  CHECK(!again.recovery.cores[0].corrupt());
  CHECK(again.records.size() == 401);

  // Without recycling, an open deletes the free files it finds.
  reactor::block_on([&]() -> Task<void> {
    auto store = reopen(config);
    const uint64_t at = store->segment();
    co_await append_round(*store, dir.path(), Named::yes);
    REQUIRE((co_await store->retire(at)).ok());
    co_await store->close();
  }());
  REQUIRE(!list_free(dir.path(), 0)->empty());
  LogStore::Config plain = config;
  plain.prepare = Prepare::fallocate;
  reactor::block_on([&]() -> Task<void> {
    auto store = reopen(plain);
    co_await store->close();
  }());
  CHECK(list_free(dir.path(), 0)->empty());
}
