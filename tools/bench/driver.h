// Driver: one core's share of coworker-bench's load.
//
//   1. Ask /v1/cluster for the buckets and their leaders (Router).
//   2. Open this core's connections: POST /v1/connect each, at the --server
//      addresses in turn.
//   3. Start: the measured interval is [start + warm-up, start + warm-up +
//      duration). Each connection then loops, keeping the client's duty of
//      DESIGN §3 — one window in flight, series strictly increasing:
//        a. take the next intended send time: now (closed loop), or the next
//           slot of this core's schedule, start + i / rate (open loop), and
//           wait for it when it lies ahead;
//        b. draw an identifier, build the window, send it to its bucket's
//           leader; after a failed attempt resubmit the same bytes (same
//           series) with a short backoff, alternating with the --server
//           addresses (which hop), until it is answered 2xx or --give-up-ms
//           has passed since its intended time (then it is indeterminate);
//        c. record the latency from the intended send time (so an open loop
//           that falls behind shows it: coordinated omission corrected).
//      No window starts after the end; the ones in flight finish.
//   4. Close every socket.
// A final 4xx other than 409 means the bench itself is wrong (a bad flag for
// this cluster): the core stops and says why.
#pragma once

#include "reactor/task.h"
#include "tools/bench/options.h"
#include "tools/bench/tally.h"
#include "tools/bench/workload.h"

namespace coworker::bench {

// Runs core `core`'s part of the load (of `cores`) and fills *tally.
reactor::Task<void> run_core(const BenchOptions& options, const Identifiers& identifiers,
                             unsigned core, Tally* tally);

}  // namespace coworker::bench
