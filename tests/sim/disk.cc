#include "tests/sim/disk.h"

#include <algorithm>
#include <utility>

#include <fmt/core.h>

#include "consensus/overloaded.h"
#include "consensus/assert.h"

namespace coworker::sim {

Disk::Ticket Disk::write(Tick now, consensus::Prng& prng, std::vector<DiskRecord> records) {
  COWORKER_ASSERT(!records.empty());
  const Ticket ticket = ++_issued;
  if (!_batches.empty() && _batches.back().written == now) {
    // Same tick, same batch: one write + fsync carries them all.
    Batch& batch = _batches.back();
    for (auto& record : records) batch.records.push_back(std::move(record));
    batch.last = ticket;
    return ticket;
  }
  Tick due = now + prng.between(_options.latency_min, _options.latency_max);
  if (!_batches.empty()) due = std::max(due, _batches.back().due);  // batches complete in order
  _batches.push_back(Batch{now, due, ticket, std::move(records)});
  return ticket;
}

void Disk::tick(Tick now) {
  while (!_hung && !_batches.empty() && _batches.front().due <= now) {
    Batch& batch = _batches.front();
    for (const DiskRecord& record : batch.records) {
      apply(record);
    }
    COWORKER_ASSERT(batch.last > _durable);
    _durable = batch.last;
    _completed++;
    _batches.pop_front();
  }
}

void Disk::apply(const DiskRecord& record) {
  if (const auto* paxos = std::get_if<consensus::PersistRecord>(&record)) {
    _image.paxos.apply(*paxos);
  } else if (const auto* membership = std::get_if<consensus::MembershipRecord>(&record)) {
    _image.membership.apply(*membership);
  } else if (const auto* phaser = std::get_if<BucketRecord>(&record)) {
    ReplicaReference& reference = _image.references[phaser->bucket];
    std::optional<std::string> why = reference.fold(phaser->record);
    consensus::PhaserDurable& durable = _image.phasers[phaser->bucket];
    durable.keep_log = true;  // compared entry by entry with the reference's
    durable.apply(phaser->record);
    if (!why) {
      why = reference.agree(durable);
      if (why) *why = "PhaserDurable::apply recovers " + *why;
    }
    if (why && !_image.fold_violation) {
      _image.fold_violation = fmt::format("bucket {}: {}", phaser->bucket, *why);
    }
  } else if (const auto* checkpoint = std::get_if<MembershipCheckpoint>(&record)) {
    _image.membership = checkpoint->durable;
  } else {
    const auto& counter = std::get<CounterRecord>(record);
    COWORKER_ASSERT(counter.counter > _image.counter);
    _image.counter = counter.counter;
  }
}

void Disk::crash() {
  _batches.clear();
  // Tickets of lost writes are never reused: the next boot's writes get new
  // ones, so nothing waits on a lost write.
  _durable = _issued;
  _hung = false;
}

}  // namespace coworker::sim
