// coworker: one participant of a Coworker cluster (DESIGN §3 command line).
//
//   coworker --listen 127.0.0.1:7000 --peer-listen 127.0.0.1:7100 --data-dir DIR
//            [--join 127.0.0.1:7100] [--cores N] [--buckets B] [--replicas 3] ...
//
// main() runs on the thread that becomes core 0: it parses the flags, locks
// the data directory, reads the boot hint (boot.h step 1: who this
// participant was), and hands everything to the Participant, which replays
// the log while core 0 heartbeats (boot.h step 2, beacon.h), then runs the
// cores until SIGINT or SIGTERM (or a fatal condition, with its reason
// logged). Exit codes: 0 stopped, 1 an operating failure (disk, address),
// 2 a bad command line or a cluster that refuses these parameters.
#include <cstdio>
#include <optional>
#include <string>

#include <fmt/format.h>

#include "bucket/remap.h"
#include "tools/coworker/boot.h"
#include "tools/coworker/data_dir.h"
#include "tools/coworker/flags.h"
#include "tools/coworker/log.h"
#include "tools/coworker/participant.h"

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
  // A swap interrupted after its exchange left the old log there (remap.h).
  if (Status removed = bucket::remove_remap_leftover(dir->log_dir); !removed) {
    return refuse(1, fmt::format("cannot delete {}.remap: {}", dir->log_dir,
                                 removed.error().message()));
  }
  std::optional<BootHint> hint = read_hint(dir->log_dir);
  Participant participant(std::move(flags), std::move(*dir), std::move(hint));
  return participant.run();
}
