// Repair at boot (DESIGN §4): what a participant does when recovery finds
// part of its durable state damaged, instead of serving from it.
//
// Damage to buckets only (the membership state and the promise counter
// intact): it keeps its id, and each damaged copy is made void (a phaser
// RepairRecord, phaser.h step 9g: it acks and leads nothing); its
// membership host shrinks it out of each such bucket's government
// (membership_host.h step 6) and the table's next step grows it back from
// the other members. No other bucket moves, no departure timeout.
//
// Damage to the membership state or the promise counter: it gives up its
// id and arrives anew; the cluster departs the old id (after the departure
// timeout, as after a crash) and grows the buckets back to the new one
// (phaser.h step 9). In order:
//   1. plan_repair (after the replay, before the cores start; the
//      simulator's disk after its recovery, tests/sim/disk.h): every damaged bucket
//      (recovery's suspects, the image's damaged buckets, and those whose
//      index lost a committed write: damage before a checkpoint still loses
//      entries, which no checkpoint holds) is forgotten in the boot image
//      and the core's index; the membership
//      image becomes an identity without id (consensus::abandoned_identity:
//      the members it knew remembered, the incarnation past any lost one);
//      the promise counter's damage stops mattering (a new id promises in
//      its own slot).
//   2. core 0 stages the identity checkpoint and waits until it is durable,
//      before the membership starts: the old id is never used again, even
//      after a crash.
//   3. each core stages a RepairRecord of each damaged bucket (and a
//      bucket_reset of participant_bucket when the counter was hit) before
//      its first host exists — after step 2 on every core, so a reset never
//      outlives the id it discarded state of. A later boot folds them and
//      finds those buckets clean (a reset is a checkpoint: recovery.h) and
//      void until a leader acclimates them, so it repairs once, not at
//      every start.
// With the id kept, step 2 is skipped; step 3 is the same. A crash between
// the steps repeats the repair at the next boot (the damage is still
// found): idempotent.
//
// A copy that disagrees with its leader's at run time (Phaser::needs_repair)
// is made void by the phaser itself and shrunk out the same way
// (phaser.h step 3; the hole that evidence leaves: docs/PROTOCOL.md, Repair
// at boot).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "bucket/bucket_index.h"
#include "bucket/engine_records.h"
#include "bucket/recovery.h"
#include "consensus/membership_messages.h"
#include "reactor/result.h"

namespace coworker::bucket {

struct Repair {
  // The membership state and the counter are intact: no step 2, the
  // damaged buckets are repaired under the same id.
  bool keeps_id = false;
  consensus::Identity identity;               // without id: step 2 (unless keeps_id)
  std::vector<std::vector<uint32_t>> resets;  // per core, sorted: step 3
  std::string damage;                         // what recovery found, for the log
};

// Step 3's record of a damaged bucket whose void image `image` holds.
EngineRecord repair_record(uint32_t bucket, const EngineImage& image);

// The buckets whose copies are void (repaired at this boot or an earlier
// one, not yet acclimated): for the membership host (membership_host.h
// step 6).
std::vector<uint32_t> void_copies(const EngineImage& image);

// Step 1. No damage: nullopt. Damage: the plan, applied already to `image`
// and `indexes` (one per core, or none where no index is kept: the
// simulator). An error when the membership state is damaged and there is
// nowhere to arrive anew (no member remembered, no --join: `can_join`
// false).
Result<std::optional<Repair>, std::string> plan_repair(
    EngineImage& image, const Recovery& recovery, unsigned cores,
    std::span<const std::unique_ptr<BucketIndex>> indexes, uint64_t data_dir_id, bool can_join);

}  // namespace coworker::bucket
