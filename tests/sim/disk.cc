#include "tests/sim/disk.h"

#include <algorithm>
#include <utility>

#include "consensus/overloaded.h"
#include "reactor/assert.h"

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
      std::visit(consensus::Overloaded{
                     [&](const consensus::PersistRecord& paxos) { _image.paxos.apply(paxos); },
                     [&](const consensus::MembershipRecord& membership) {
                       _image.membership.apply(membership);
                     },
                 },
                 record);
    }
    COWORKER_ASSERT(batch.last > _durable);
    _durable = batch.last;
    _completed++;
    _batches.pop_front();
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
