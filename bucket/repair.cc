#include "bucket/repair.h"

#include <algorithm>
#include <set>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "consensus/assert.h"
#include "consensus/membership_node.h"

namespace coworker::bucket {

namespace {

std::string describe(const std::set<uint32_t>& buckets, bool membership, bool counter) {
  std::vector<std::string> parts;
  if (!buckets.empty()) parts.push_back(fmt::format("buckets {}", fmt::join(buckets, ",")));
  if (membership) parts.push_back("the membership state");
  if (counter) parts.push_back("the promise counter");
  return fmt::format("{}", fmt::join(parts, ", "));
}

}  // namespace

Result<std::optional<Repair>, std::string> plan_repair(
    EngineImage& image, const Recovery& recovery, unsigned cores,
    std::span<const std::unique_ptr<BucketIndex>> indexes, uint64_t data_dir_id, bool can_join) {
  COWORKER_ASSERT(cores > 0);
  COWORKER_ASSERT(indexes.empty() || indexes.size() == cores);
  std::set<uint32_t> buckets(image.damaged_buckets.begin(), image.damaged_buckets.end());
  bool membership = image.membership_damaged;
  bool counter = image.counter_damaged;
  for (const CoreReport& core : recovery.cores) {
    for (uint32_t b : core.suspect_buckets) {
      if (b == participant_bucket) {
        counter = true;
      } else {
        COWORKER_ASSERT(b < participant_bucket);
        buckets.insert(b);
      }
    }
    membership = membership || core.membership_suspect;
  }
  // A register lost before its commit loses committed entries, which no
  // checkpoint holds: the index knows (recovery's suspects go by checkpoints).
  for (const auto& index : indexes) {
    for (uint32_t b : index->damaged_buckets()) buckets.insert(b);
  }
  if (buckets.empty() && !membership && !counter) return std::optional<Repair>{};

  Repair repair;
  repair.damage = describe(buckets, membership, counter);
  repair.keeps_id = !membership && !counter;
  consensus::MembershipDurable& durable = image.membership;
  if (durable.identity.data_dir == 0) durable.identity.data_dir = data_dir_id;
  if (repair.keeps_id) {
    repair.identity = durable.identity;
  } else {
    repair.identity = consensus::abandoned_identity(durable, membership);
    if (repair.identity.remembered.empty() && !can_join) {
      return fmt::format("{} damaged, and no member to arrive anew through (none remembered, "
                         "no --join): start it with --join naming a member",
                         repair.damage);
    }
    durable = consensus::MembershipDurable{};
    durable.identity = repair.identity;
    image.membership_damaged = false;
    image.counter_damaged = false;
  }

  repair.resets.resize(cores);
  for (uint32_t b : buckets) {
    const unsigned core = b % cores;
    repair.resets[core].push_back(b);
    // Void (phaser.h step 9g), with whatever promise survived the damage.
    const auto kept = image.phasers.find(b);
    const consensus::Promise promise =
        kept == image.phasers.end() ? consensus::Promise{} : kept->second.promise;
    consensus::PhaserDurable void_copy;
    void_copy.apply(consensus::RepairRecord{promise});
    image.phasers[b] = std::move(void_copy);
    if (!indexes.empty()) indexes[core]->reset(b);
  }
  image.damaged_buckets.clear();
  if (counter) {
    // Every core's log may hold counter records: each folds its own reset.
    for (auto& resets : repair.resets) resets.push_back(participant_bucket);
  }
  return std::optional<Repair>{std::move(repair)};
}

EngineRecord repair_record(uint32_t bucket, const EngineImage& image) {
  if (bucket == participant_bucket) return encode_bucket_reset(bucket);
  const consensus::PhaserDurable& copy = image.phasers.at(bucket);
  COWORKER_ASSERT(copy.repairing);
  return encode_phaser_record(bucket, consensus::RepairRecord{copy.promise});
}

std::vector<uint32_t> void_copies(const EngineImage& image) {
  std::vector<uint32_t> buckets;
  for (const auto& [bucket, copy] : image.phasers) {
    if (copy.repairing) buckets.push_back(bucket);
  }
  return buckets;
}

}  // namespace coworker::bucket
