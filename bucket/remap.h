// Re-mapping a log to another core count (DESIGN §6; issue 12 point 5).
//
// Bucket b lives on core b mod --cores, and each core's log is read back
// and continued only by its own core (recovery.h, log_store.h). A restart
// with another --cores therefore rewrites the log once, before any core
// starts, so that afterwards every core's log holds its own buckets only:
//
//   1. `<log>.remap`, if an earlier attempt left one, is deleted: it is
//      never the live log (step 4 makes the swap atomic).
//   2. Every old core's log is replayed as at a start (recovery.h: from the
//      first whole round of a retained log; torn tails cut). A damaged
//      log is refused: the old core count must repair it first (repair
//      resets buckets per core, and the damage must stay visible until it
//      has).
//   3. Into `<log>.remap/core-<c>/`, through LogStore (the shipped writer):
//      each bucket's records in their order to core b mod cores,
//      the membership records to core 0, and on core 0 one promise
//      counter and one connection block with the values the old logs fold
//      to (they are maxima over every core). Round markers are dropped: a
//      round speaks only for the buckets of the core that wrote it, and
//      the new logs start at segment 1 with nothing retired. Every store
//      is made durable and closed; the trees are fsync'ed.
//   4. renameat2(RENAME_EXCHANGE) swaps `<log>` and `<log>.remap`, the
//      data directory is fsync'ed, and the old log (now `<log>.remap`) is
//      deleted. A crash before the swap leaves the old log live (the next
//      start re-maps again); after it, the new one (step 1 deletes the old).
//
// Invariant (tests/bucket/remap_test.cc): the new log folds to the same
// engine image as the old one, every bucket's records come back in the
// same order with the same payloads, and each core's log names only buckets
// of that core.
//
// Runs synchronously before the cores start (a temporary loop on the
// calling thread); its cost is one read and one write of the retained log.
#pragma once

#include <cstdint>
#include <string>

#include "bucket/log_store.h"
#include "reactor/result.h"

namespace coworker::bucket {

// Where records of bucket `bucket` (or membership_bucket / participant_bucket) live.
unsigned core_of(uint32_t bucket, unsigned cores);

// Whether a log written by `core` holds a record its core may not continue
// today: the core is gone, or the bucket now belongs to another core.
bool foreign_record(unsigned core, uint32_t bucket, unsigned cores);

struct RemapReport {
  unsigned old_cores = 0;  // core directories found
  uint64_t records = 0;    // records copied (participant records replaced excluded)
  uint64_t bytes = 0;      // payload bytes copied
};

// Rewrites the log in `log_dir` for `cores` cores (steps 1-4). `store`
// gives segment size, batch size, preparation and sync of the new logs
// (its dir and core are ignored). The error string is for the operator.
Result<RemapReport, std::string> remap_log(const std::string& log_dir, unsigned cores,
                                           const LogStore::Config& store);

// A crash after step 4's swap leaves `<log>.remap` behind; also run at
// every start (it is never the live log).
Status remove_remap_leftover(const std::string& log_dir);

}  // namespace coworker::bucket
