// coworker: one participant of a Coworker cluster (DESIGN §3 command line).
//
//   coworker --listen 127.0.0.1:7000 --peer-listen 127.0.0.1:7100 --data-dir DIR
//            [--join 127.0.0.1:7100] [--cores N] [--buckets B] [--replicas 3] ...
//
// main() runs on the thread that becomes core 0: it parses the flags, locks
// the data directory, replays every core's log into the engine's recovery
// image (re-mapping it first when it was written with another --cores:
// bucket/remap.h), and hands everything to the Participant, which runs the cores
// until SIGINT or SIGTERM (or a fatal condition, with its reason logged).
// Exit codes: 0 stopped, 1 an operating failure (disk, address), 2 a bad
// command line or a cluster that refuses these parameters.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "bucket/bucket_index.h"
#include "bucket/engine_records.h"
#include "bucket/recovery.h"
#include "bucket/remap.h"
#include "tools/coworker/data_dir.h"
#include "tools/coworker/flags.h"
#include "tools/coworker/log.h"
#include "tools/coworker/participant.h"
#include "tools/coworker/repair.h"

using namespace coworker;
using namespace coworker::server;

namespace {

int refuse(int code, const std::string& reason) {
  std::fprintf(stderr, "coworker: %s\n", reason.c_str());
  return code;
}

// What replaying the log gives the participant.
struct Replayed {
  bucket::EngineImage image;
  std::vector<std::unique_ptr<bucket::BucketIndex>> indexes;  // one per core
  bucket::Recovery recovery;
  bool foreign = false;  // a record a core of today may not continue (remap.h)
};

Result<Replayed, std::string> replay(const std::string& log_dir, unsigned cores) {
  Replayed out;
  for (unsigned c = 0; c < cores; c++) {
    out.indexes.push_back(std::make_unique<bucket::BucketIndex>(c));
  }
  // Summaries (recovery.h step 5) only while every core's log is one
  // of today's cores: a re-map reads and rewrites everything anyway.
  Result<std::vector<unsigned>> present = bucket::list_cores(log_dir);
  if (!present) {
    return fmt::format("cannot read the log in {}: {}", log_dir, present.error().message());
  }
  const bool same_cores = std::all_of(present->begin(), present->end(),
                                      [&](unsigned c) { return c < cores; });
  bucket::ReplayOptions options;
  if (same_cores) {
    options.summaries = [&](const bucket::SegmentSummary& summary) {
      return out.indexes[summary.core]->apply_summary(summary.segment, summary.events);
    };
    // A segment read whole gets its summary now, so the next start need
    // not read it (not fsync'ed: segment_summary.h step 2).
    options.sealed = [&](const bucket::SealedSegment& sealed) {
      bucket::SegmentSummary summary = out.indexes[sealed.core]->take_summary(sealed);
      if (!sealed.whole || sealed.summarized) return;
      Status written = bucket::write_summary(log_dir, summary);
      if (!written) {
        log_error(log_no_core, "writing the summary of core {} segment {}: {}", sealed.core,
                  sealed.segment, written.error().message());
      }
    };
  }
  Result<bucket::Recovery> recovery = bucket::replay_log(
      log_dir,
      [&](const bucket::ReplayedRecord& r) {
        if (r.feed == bucket::Feed::everything) out.image.apply(r.header, r.payload);
        const uint32_t b = r.header.bucket;
        if (bucket::foreign_record(r.core, b, cores)) {
          out.foreign = true;
          return;
        }
        out.indexes[r.core]->on_replayed(r);  // a bucket's records, and round markers
      },
      options);
  if (!recovery) {
    return fmt::format("cannot read the log in {}: {}", log_dir, recovery.error().message());
  }
  out.recovery = std::move(*recovery);
  for (const bucket::CoreReport& report : out.recovery.cores) {
    if (report.core < cores) out.indexes[report.core]->drop_journals_below(report.resume.segment);
    if (report.summarized > 0) {
      log_info(log_no_core, "recovery: core {} took {} segments from their summaries, read {}", report.core,
               report.summarized, report.segments - report.summarized);
    }
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  ParseResult parsed = parse_server_flags(argc, argv);
  if (!parsed.flags) return cli::emit(parsed.exit);
  ServerFlags flags = std::move(*parsed.flags);
  set_log_level(flags.log_level);

  Result<DataDir, std::string> dir = open_data_dir(flags.data_dir);
  if (!dir) return refuse(1, dir.error());
  // A swap interrupted after its exchange left the old log there (remap.h).
  if (Status removed = bucket::remove_remap_leftover(dir->log_dir); !removed) {
    return refuse(1, fmt::format("cannot delete {}.remap: {}", dir->log_dir,
                                 removed.error().message()));
  }
  Result<Replayed, std::string> replayed = replay(dir->log_dir, flags.cores);
  if (!replayed) return refuse(1, replayed.error());
  if (replayed->foreign) {
    // Buckets are assigned to cores by b mod --cores and each core's log is
    // continued only by its own core: the log is rewritten for today's
    // count once, then read again (remap.h).
    log_info(log_no_core, "the log in {} was written with another --cores: re-mapping it to {}",
             dir->log_dir, flags.cores);
    const auto started = std::chrono::steady_clock::now();
    Result<bucket::RemapReport, std::string> remapped =
        bucket::remap_log(dir->log_dir, flags.cores, log_store_config(flags, dir->log_dir, 0));
    if (!remapped) {
      return refuse(2, fmt::format("cannot re-map the log in {} to --cores {}: {}", dir->log_dir,
                                   flags.cores, remapped.error()));
    }
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
        std::chrono::steady_clock::now() - started);
    log_info(log_no_core, "re-mapped the log from {} cores to {}: {} records, {} bytes, {} ms",
             remapped->old_cores, flags.cores, remapped->records, remapped->bytes, ms.count());
    replayed = replay(dir->log_dir, flags.cores);
    if (!replayed) return refuse(1, replayed.error());
    COWORKER_ASSERT(!replayed->foreign);
  }
  bucket::EngineImage image = std::move(replayed->image);
  std::vector<std::unique_ptr<bucket::BucketIndex>> indexes = std::move(replayed->indexes);
  bucket::Recovery recovery = std::move(replayed->recovery);
  Result<std::optional<Repair>, std::string> repair =
      plan_repair(image, recovery, indexes, dir->id, !flags.join.empty());
  if (!repair) return refuse(1, fmt::format("{} in {}", repair.error(), dir->log_dir));
  if (*repair) {
    log_warn(log_no_core,
             "recovery found {} damaged in {}: never serving from the damaged copy, this "
             "participant gives up its id and arrives anew; the buckets grow back to it from "
             "their replicas",
             (*repair)->damage, dir->log_dir);
  }
  log_info(log_no_core, "starting: data dir {} ({:016x}{}), {} cores, {} records replayed",
              dir->path, dir->id, dir->fresh ? ", new" : "", flags.cores, image.records);
  Participant participant(std::move(flags), std::move(*dir), std::move(image),
                          std::move(recovery), std::move(indexes), std::move(*repair));
  return participant.run();
}
