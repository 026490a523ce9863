// DataDir: a participant's data directory — its lock, its identity file and
// where its write-ahead logs live.
//
// Opened once by main() before any core starts, closed at exit (the lock is
// released by the kernel when the process dies). Synchronous system calls:
// this runs before the reactor.
//
//   <dir>/LOCK       flock'ed for the process's life: two participants never
//                    share a data directory
//   <dir>/IDENTITY   "coworker-data-dir 1 <16 hex digits>\n": the data
//                    directory's id, drawn from getrandom() at first use and
//                    written durably (temp file, fsync, rename, directory
//                    fsync) before anything else; the arrival nonce's first
//                    half (DESIGN §3)
//   <dir>/log/       core-<C>/ segment files (bucket/log_store.h)
//
// Everything else a participant remembers (cluster id and parameters,
// incarnation, arrival id, promise counters, the phasers' state) is in the
// logs, replayed at start (bucket/engine_records.h).
#pragma once

#include <cstdint>
#include <string>

#include "reactor/result.h"

namespace coworker::server {

struct DataDir {
  std::string path;
  std::string log_dir;
  uint64_t id = 0;      // never 0
  bool fresh = false;   // the identity was created now
  int lock_fd = -1;
};

// Creates the directory if missing; fails with a one-line reason.
Result<DataDir, std::string> open_data_dir(const std::string& path);

}  // namespace coworker::server
