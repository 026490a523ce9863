// coworker-bench-log-store, question 5: a start's recovery from the newest
// checkpoint round (segment summaries, recovery.h steps 4-5) against
// replaying the whole log (issue 12 point 7: <= 0.1x the time).
//
// The log: 4 buckets of committed writes of 16 entries with 1 KiB bodies,
// about --checkpoint-mib MiB in 64 MiB segments, written through LogStore
// and StoreStorage without fdatasync (untimed), with a checkpoint round
// (marker, each bucket's checkpoint) once per segment and each sealed
// segment's summary written, as a participant's cores do.
// Each run drops the log from the page cache, then replays it into an
// index and the engine's image, as tools/coworker/main.cc does: either
// reading every record, or taking the summaries. Runs alternate; medians.
#include <cinttypes>
#include <map>
#include <memory>

#include "bench/log_store_bench.h"
#include "bucket/bucket_index.h"
#include "bucket/engine_records.h"
#include "bucket/log_store.h"
#include "bucket/recovery.h"
#include "bucket/segment_summary.h"
#include "bucket/store_storage.h"
#include "reactor/block_on.h"

namespace coworker::bench {

using namespace coworker::bucket;
using reactor::Task;

namespace {

constexpr uint32_t buckets = 4;
constexpr uint32_t entries_per_write = 16;
constexpr size_t body_bytes = 1024;

void write_log(const std::string& log, uint64_t bytes) {
  BucketIndex index(0);
  reactor::block_on([&]() -> Task<void> {
    LogStore::Config config;
    config.dir = log;
    config.sync = Sync::none;
    config.sealed = [&](const SealedSegment& sealed) {
      Status written = write_summary(log, index.take_summary(sealed));
      if (!written) die("write_summary");
    };
    auto opened = LogStore::open(config, Resume{});
    if (!opened) die("LogStore::open");
    LogStore& store = **opened;
    const EngineImage empty;
    StoreStorage storage(store, empty, &index);
    std::map<uint32_t, consensus::PhaserDurable> images;
    uint64_t round_segment = 0;
    uint64_t written = 0;
    for (uint64_t number = 1; written < bytes; number++) {
      const uint32_t b = static_cast<uint32_t>(number % buckets);
      consensus::PhaserDurable& image = images[b];
      auto write = std::make_shared<consensus::Write>();
      write->bucket = b;
      write->promise = consensus::Promise{1, 1};
      write->number = number;
      write->first = image.commit_end;
      for (uint32_t i = 0; i < entries_per_write; i++) {
        consensus::BucketEntry entry;
        const uint64_t p = write->first + i;
        entry.identifier = "id-" + std::to_string(p);
        entry.connection = consensus::ConnectionId{1, 1 + b};
        entry.series = p + 1;
        entry.window = write->first + 1;
        entry.body = std::string(body_bytes, static_cast<char>('a' + p % 26));
        write->entries.push_back(std::move(entry));
      }
      write->checksum = consensus::checksum_of(*write);
      const consensus::PhaserRecord held = consensus::RegisterRecord{write};
      const consensus::PhaserRecord commit = consensus::CommitRecord{
          {write->end(), write->number, write->checksum}, write->first};
      (void)storage.stage_phaser(b, {held, commit}, bucket::Flush::now);
      image.apply(held);
      image.apply(commit);
      written += record_bytes(encode_phaser_record(b, held).payload.size());
      if (store.segment() > round_segment) {  // Core::round_due, once per segment
        round_segment = store.segment();
        (void)storage.stage_round_marker();
        for (const auto& [bucket, durable] : images) {
          std::vector<EngineRecord> records;
          for (const consensus::PhaserRecord& r : consensus::checkpoint_records(durable)) {
            records.push_back(encode_phaser_record(bucket, r));
          }
          (void)storage.stage_checkpoint(std::move(records));
        }
      }
      if (storage.overflowing()) co_await storage.drain_overflow();
    }
    co_await storage.drain_overflow();
    if (!(co_await store.durable(store.next_seq() - 1))) die("durable");
    // The newest round, named as Core::make_round names it.
    if (!write_round(log, 0, storage.round_place())) die("round");
    co_await store.close();
  }());
  ::sync();
}

struct Replayed {
  double seconds = 0;
  CoreReport report;
  uint64_t writes = 0;
};

Replayed replay(const std::string& log, bool summaries) {
  BucketIndex index(0);
  EngineImage image;
  ReplayOptions options;
  if (summaries) {
    options.summaries = [&](const SegmentSummary& s) {
      return index.apply_summary(s.segment, s.events);
    };
  }
  const auto start = Clock::now();
  Result<CoreReport> report = replay_core(
      log, 0,
      [&](const ReplayedRecord& r) {
        if (r.feed == Feed::everything) image.apply(r.header, r.payload);
        if (r.header.bucket < participant_bucket ||
            r.header.kind == RecordKind::checkpoint_round) {
          index.on_replayed(r);
        }
      },
      options);
  Replayed out;
  out.seconds = since(start);
  if (!report || report->corrupt()) die("replay");
  out.report = std::move(*report);
  out.writes = index.writes_total();
  return out;
}

}  // namespace

void question_checkpoint(const std::string& dir, int runs, uint64_t mib) {
  const std::string log = dir + "/checkpoint";
  std::filesystem::remove_all(log);
  write_log(log, mib << 20);
  const std::vector<std::string> files = segment_files(log);
  std::vector<double> whole, summarized;
  Replayed w, s;
  for (int r = 0; r < runs; r++) {
    drop_cache(files);
    w = replay(log, false);
    whole.push_back(w.seconds);
    drop_cache(files);
    s = replay(log, true);
    summarized.push_back(s.seconds);
  }
  // The same, cache-hot: what is left when the disk is out of the picture.
  std::vector<double> hot;
  for (int r = 0; r < runs; r++) hot.push_back(replay(log, true).seconds);
  if (w.writes != s.writes) die("the two recoveries index different writes");
  std::filesystem::remove_all(log);
  std::printf("5. recovery of %" PRIu64 " MiB in %" PRIu64 " segments (%" PRIu64
              " writes of %u x %zu-byte entries over %u buckets, a round per segment), "
              "cache-cold:\n",
              mib, w.report.segments, w.writes, entries_per_write, body_bytes, buckets);
  std::printf("   whole log: %.3f s (%" PRIu64 " records); from the newest round with "
              "summaries: %.3f s (%" PRIu64 " records, %" PRIu64 " segments from summaries)\n",
              median(whole), w.report.records, median(summarized), s.report.records,
              s.report.summarized);
  std::printf("      RATIO from round / whole = %.3fx   (target <= 0.1x)\n",
              median(summarized) / median(whole));
  std::printf("   (from the newest round, cache-hot: %.3f s)\n\n", median(hot));
}

}  // namespace coworker::bench
