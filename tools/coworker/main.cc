// coworker: one participant of a Coworker cluster (DESIGN §3 command line).
//
//   coworker --listen 127.0.0.1:7000 --peer-listen 127.0.0.1:7100 --data-dir DIR
//            [--join 127.0.0.1:7100] [--cores N] [--buckets B] [--replicas 3] ...
//
// main() runs on the thread that becomes core 0: it parses the flags, locks
// the data directory, replays every core's log into the engine's recovery
// image, and hands everything to the Participant, which runs the cores
// until SIGINT or SIGTERM (or a fatal condition, with its reason logged).
// Exit codes: 0 stopped, 1 an operating failure (disk, address), 2 a bad
// command line or a cluster that refuses these parameters.
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "bucket/bucket_index.h"
#include "bucket/engine_records.h"
#include "bucket/recovery.h"
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

}  // namespace

int main(int argc, char** argv) {
  ParseResult parsed = parse_server_flags(argc, argv);
  if (!parsed.flags) return cli::emit(parsed.exit);
  ServerFlags flags = std::move(*parsed.flags);
  set_log_level(flags.log_level);

  Result<DataDir, std::string> dir = open_data_dir(flags.data_dir);
  if (!dir) return refuse(1, dir.error());
  bucket::EngineImage image;
  std::vector<std::unique_ptr<bucket::BucketIndex>> indexes;
  for (unsigned c = 0; c < flags.cores; c++) {
    indexes.push_back(std::make_unique<bucket::BucketIndex>(c));
  }
  bool foreign = false;  // records in the log of a core we do not run now
  Result<bucket::Recovery> recovery =
      bucket::replay_log(dir->log_dir, [&](const bucket::ReplayedRecord& r) {
        image.apply(r.header, r.payload);
        const uint32_t b = r.header.bucket;
        if (b >= bucket::participant_bucket) return;  // membership, counters: any core
        if (r.core >= flags.cores || b % flags.cores != r.core) {
          foreign = true;
          return;
        }
        indexes[r.core]->on_replayed(r);
      });
  if (!recovery) {
    return refuse(1, fmt::format("cannot read the log in {}: {}", dir->log_dir,
                                 recovery.error().message()));
  }
  if (foreign) {
    // Buckets are assigned to cores by b mod --cores, and each core's log
    // is read back by that core: a restart with another core count needs
    // the re-mapping of the log store's part 2.
    return refuse(2, fmt::format("the log in {} was written with another --cores; restart with "
                                 "the same --cores (re-mapping is not supported yet)",
                                 dir->log_dir));
  }
  Result<std::optional<Repair>, std::string> repair =
      plan_repair(image, *recovery, indexes, dir->id, !flags.join.empty());
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
                          std::move(*recovery), std::move(indexes), std::move(*repair));
  return participant.run();
}
