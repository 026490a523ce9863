// SimStorage: a simulated participant's Disk seen through the engine's
// storage interface (bucket/host.h), so the simulator drives the same
// BucketHost and MembershipHost the server runs.
//
// Stateless beyond the tick of the call in progress: tickets are the disk's,
// the recovered phaser images are the server's fold of the disk's durable
// log-store records (Disk::recovered, disk.h); fetches read the disk's own
// fold, which keeps every committed write (the server's index stand-in). Owned by the host adapter of one boot;
// the Disk outlives it.
//
// Membership records are staged and the disk is ticked at once, so a
// zero-latency disk completes them within the call (persist-before-send
// then releases the output immediately, as a server with a fast disk
// would); phaser records and counters complete at the participant's next
// tick, like a server core's next batch.
#pragma once

#include <algorithm>

#include "bucket/host.h"
#include "consensus/assert.h"
#include "tests/sim/disk.h"

namespace coworker::sim {

class SimStorage final : public bucket::HostStorage {
 public:
  // Constructed at a boot: what it recovered is the server's fold of the
  // disk (a reference to the disk's: a host replaced within the boot folds
  // the records since, which only the buckets it hosts wrote), as a
  // server's StoreStorage holds its replay's image.
  SimStorage(Disk& disk, consensus::Prng& prng)
      : _disk(disk), _prng(prng), _recovered(disk.recovered()) {}

  void set_now(Tick now) { _now = now; }
  Disk& disk() { return _disk; }

  Ticket stage_membership(std::vector<consensus::MembershipRecord> records) override {
    COWORKER_ASSERT(!records.empty());
    std::vector<DiskRecord> disk_records;
    disk_records.reserve(records.size());
    for (auto& record : records) disk_records.emplace_back(std::move(record));
    const Ticket ticket = _disk.write(_now, _prng, std::move(disk_records));
    _disk.tick(_now);  // a zero-latency disk completes at once
    return ticket;
  }
  // `Flush` is the server's log store's scheduling: the simulated disk
  // makes records durable on its own schedule, whatever it is told.
  Ticket stage_phaser(uint32_t bucket, std::vector<consensus::PhaserRecord> records,
                      bucket::Flush) override {
    COWORKER_ASSERT(!records.empty());
    std::vector<DiskRecord> disk_records;
    disk_records.reserve(records.size());
    // Real bytes (issue 19 point 3): the disk encodes each record as the
    // server's log store holds it, and a restart recovers from the
    // server's fold of those bytes (disk.h).
    for (auto& record : records) disk_records.emplace_back(BucketRecord{bucket, std::move(record)});
    return _disk.write(_now, _prng, std::move(disk_records));
  }
  Ticket stage_counter(uint32_t counter) override {
    return _disk.write(_now, _prng, {CounterRecord{counter}});
  }
  Ticket stage_membership_checkpoint(const consensus::MembershipDurable& durable) override {
    const Ticket ticket = _disk.write(_now, _prng, {MembershipCheckpoint{durable}});
    _disk.tick(_now);  // as stage_membership
    return ticket;
  }
  // A checkpoint round's first record (PhaserHost::checkpoint_round); not
  // the engine's (a server's core stages it: Core::checkpoint_round).
  Ticket stage_round_marker() { return _disk.write(_now, _prng, {RoundMarker{}}); }
  Ticket durable() const override { return _disk.durable(); }
  // A phaser host replaced in the same boot (the participant arrived anew)
  // recovers from the old host's images (BucketHost::images), which may be
  // ahead of the disk's durable image: the new host holds its effects until
  // they are durable.
  void replace_images(std::map<uint32_t, consensus::PhaserDurable> images) {
    for (auto& [bucket, image] : images) {
      image.keep_log = false;
      _replaced.insert_or_assign(bucket, std::move(image));
    }
  }
  const std::map<uint32_t, consensus::PhaserDurable>& replaced() const { return _replaced; }
  const consensus::PhaserDurable* recovered(uint32_t bucket) const override {
    if (const auto it = _replaced.find(bucket); it != _replaced.end()) return &it->second;
    const auto& images = _recovered.phasers;
    const auto image = images.find(bucket);
    return image == images.end() ? nullptr : &image->second;
  }
  std::vector<uint32_t> recovered_buckets() const override {
    std::vector<uint32_t> buckets;
    for (const auto& [bucket, image] : _recovered.phasers) buckets.push_back(bucket);
    for (const auto& [bucket, image] : _replaced) buckets.push_back(bucket);
    std::sort(buckets.begin(), buckets.end());
    buckets.erase(std::unique(buckets.begin(), buckets.end()), buckets.end());
    return buckets;
  }
  // Answered at the participant's next tick (PhaserHost::tick), from the
  // durable image: what a server's read of its log would find.
  struct FetchRequest {
    uint32_t bucket = 0;
    consensus::ParticipantId to = 0;
    consensus::Position from = 0;
    size_t bytes_max = 0;
  };
  void fetch(uint32_t bucket, consensus::ParticipantId to, consensus::Position from,
             size_t bytes_max) override {
    _fetches.push_back(FetchRequest{bucket, to, from, bytes_max});
  }
  std::vector<FetchRequest> take_fetches() { return std::move(_fetches); }
  // The committed writes a fetch finds on the durable image.
  std::vector<consensus::WritePtr> read(const FetchRequest& request) const {
    std::vector<consensus::WritePtr> writes;
    const auto& images = _disk.image().phasers;
    const auto found = images.find(request.bucket);
    if (found == images.end()) return writes;
    const consensus::PhaserDurable* image = &found->second;
    size_t bytes = 0;
    for (const consensus::WritePtr& write : image->writes) {
      if (write->end() <= request.from) continue;
      if (!writes.empty() && bytes >= request.bytes_max) break;
      for (const auto& e : write->entries) bytes += e.body.size() + e.identifier.size();
      writes.push_back(write);
    }
    return writes;
  }

 private:
  Disk& _disk;
  consensus::Prng& _prng;
  const bucket::EngineImage& _recovered;  // the disk's (Disk::recovered)
  Tick _now = 0;
  std::vector<FetchRequest> _fetches;
  std::map<uint32_t, consensus::PhaserDurable> _replaced;
};

}  // namespace coworker::sim
