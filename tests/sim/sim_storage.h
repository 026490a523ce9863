// SimStorage: a simulated participant's Disk seen through the engine's
// storage interface (bucket/host.h), so the simulator drives the same
// BucketHost and MembershipHost the server runs.
//
// Stateless beyond the tick of the call in progress: tickets are the disk's,
// the recovered phaser images are the disk's durable image (folded by each
// protocol's own reducer, disk.h). Owned by the host adapter of one boot;
// the Disk outlives it.
//
// Membership records are staged and the disk is ticked at once, so a
// zero-latency disk completes them within the call (persist-before-send
// then releases the output immediately, as a server with a fast disk
// would); phaser records and counters complete at the participant's next
// tick, like a server core's next batch.
#pragma once

#include "bucket/host.h"
#include "consensus/assert.h"
#include "tests/sim/disk.h"

namespace coworker::sim {

class SimStorage final : public bucket::HostStorage {
 public:
  SimStorage(Disk& disk, consensus::Prng& prng) : _disk(disk), _prng(prng) {}

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
  Ticket stage_phaser(uint32_t bucket, std::vector<consensus::PhaserRecord> records) override {
    COWORKER_ASSERT(!records.empty());
    std::vector<DiskRecord> disk_records;
    disk_records.reserve(records.size());
    for (auto& record : records) disk_records.emplace_back(BucketRecord{bucket, std::move(record)});
    return _disk.write(_now, _prng, std::move(disk_records));
  }
  Ticket stage_counter(uint32_t counter) override {
    return _disk.write(_now, _prng, {CounterRecord{counter}});
  }
  Ticket durable() const override { return _disk.durable(); }
  const consensus::PhaserDurable* recovered(uint32_t bucket) const override {
    const auto& images = _disk.image().phasers;
    const auto image = images.find(bucket);
    return image == images.end() ? nullptr : &image->second;
  }

 private:
  Disk& _disk;
  consensus::Prng& _prng;
  Tick _now = 0;
};

}  // namespace coworker::sim
