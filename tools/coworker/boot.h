// Boot: what a participant reads from its data dir before it serves
// (DESIGN §3, restart on the data dir), in two steps.
//
//   1. read_hint (main, before the cores start; milliseconds): core 0's
//      log from its named checkpoint round on (recovery.h step 4), the
//      membership records only — enough to say who this participant was
//      (its arrival id) and whom to tell (the members' peer addresses). It
//      is a hint, never state anything is decided on: the RecoveryBeacon
//      (beacon.h) heartbeats from it, `recovering`, while step 2 runs.
//      Without a named round (a log younger than its first round, or a
//      `round` file deleted) it reads core 0's log whole, as slowly as
//      step 2 would.
//   2. load (a thread of its own: Participant::load_state, while core 0's
//      loop runs the beacon): every core's log replayed into the engine's
//      image and the per-core indexes, the log re-mapped first when it was
//      written with another --cores (bucket/remap.h), and the repair plan
//      when recovery found damage (bucket/repair.h). Slow on a large log: about
//      0.07 s per GiB retained from the summaries, 0.8 s per GiB read whole
//      (docs/OPERATIONS.md) — hence the beacon, so a slow replay is not a
//      departure (DESIGN §3: a `recovering` participant is departed only
//      after --recovery-timeout-ms).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "bucket/bucket_index.h"
#include "bucket/engine_records.h"
#include "bucket/recovery.h"
#include "bucket/repair.h"
#include "consensus/ids.h"
#include "reactor/result.h"
#include "tools/coworker/data_dir.h"
#include "tools/coworker/flags.h"

namespace coworker::server {

// Step 1: who this participant was, as its log's newest round says.
struct BootHint {
  consensus::ParticipantId id = consensus::no_participant;
  uint64_t cluster = 0;
  uint64_t boots = 0;  // the membership Paxos's boot counter then
  // Peer addresses ("<peer>|<http>" or "<peer>") of every member the hint
  // knows: its snapshot's members and arrivals it accepted since.
  std::vector<std::string> members;
};

// Nothing when there is no one to tell: a fresh or arriving participant
// (no id), or a core-0 log this step cannot read (step 2 then says why).
std::optional<BootHint> read_hint(const std::string& log_dir);

// Step 2's result: what the Participant starts from.
struct Loaded {
  bucket::EngineImage image;
  std::vector<std::unique_ptr<bucket::BucketIndex>> indexes;  // one per core
  bucket::Recovery recovery;
  std::optional<bucket::Repair> repair;  // recovery found damage (already applied)
};

// Why step 2 failed: the exit code (1 an operating failure, 2 parameters
// the log refuses) and a one-line reason.
struct BootFailure {
  int code = 1;
  std::string reason;
};

// `stop`, set by another thread, ends the replay early (a failure then);
// a re-map in progress runs to its end first.
Result<Loaded, BootFailure> load(const ServerFlags& flags, const DataDir& dir,
                                 const std::atomic<bool>& stop);

}  // namespace coworker::server
