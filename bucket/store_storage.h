// StoreStorage: the engine's storage (HostStorage, host.h) over one core's
// LogStore — what the server's BucketHost and MembershipHost stage goes
// into the core's write-ahead log, encoded by engine_records.h.
//
// One per core, owned by the core's participant code next to its LogStore
// and its hosts, used only on that core. Synchronous, like the hosts: a
// stage call copies the records into the store's filling batch at once.
// When the batch is full (LogStore::stage answers `full`), the records wait
// here, in order, and every later stage queues behind them, so the log
// keeps the engine's order; the core's driver runs drain_overflow() to move
// them in as the flusher makes room. Memory stays bounded because the
// engine waits for durability before it stages more of the same kind (one
// write in flight per bucket; membership output released only once durable).
//
// Tickets count stage calls; a call's ticket is durable once the store's
// fdatasync covers the call's last record. A store that failed (a write or
// fdatasync error) makes nothing durable again: the hosts stall, the
// membership host reports the storage hung, and the process must restart
// and recover (log_store.h).
//
// The per-bucket index (bucket_index.h), when one is attached, learns each
// phaser record right after it is staged, with its place in the log
// (LogStore::last_location()), in the order the log holds them.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <optional>
#include <utility>
#include <vector>

#include "bucket/bucket_index.h"
#include "bucket/engine_records.h"
#include "bucket/host.h"
#include "bucket/log_store.h"
#include "reactor/task.h"

namespace coworker::bucket {

class StoreStorage final : public HostStorage {
 public:
  // `image`: what replay recovered (recovered() answers from it); it must
  // outlive this object. `index`: the core's BucketIndex, fed what is staged
  // (optional; it must outlive this object and be the store's core's).
  StoreStorage(LogStore& store, const EngineImage& image, BucketIndex* index = nullptr);

  Ticket stage_membership(std::vector<consensus::MembershipRecord> records) override;
  Ticket stage_phaser(uint32_t bucket, std::vector<consensus::PhaserRecord> records,
                      Flush flush) override;
  Ticket stage_counter(uint32_t counter) override;
  Ticket stage_membership_checkpoint(const consensus::MembershipDurable& durable) override;
  // Not the engine's: the participant's connection-id blocks (core 0).
  Ticket stage_connection_block(uint64_t end);
  // Not the engine's: repair at boot, before any host stages (an identity
  // checkpoint, bucket resets: engine_records.h). The index forgets a reset
  // bucket here, as replay will at this place in the log.
  Ticket stage_repair(std::vector<EngineRecord> records);
  Ticket durable() const override;
  const consensus::PhaserDurable* recovered(uint32_t bucket) const override;
  // The recovered buckets this core hosts (the image is the participant's,
  // every core's log folded: set_hosts says which are this core's).
  std::vector<uint32_t> recovered_buckets() const override;
  void set_hosts(std::function<bool(uint32_t bucket)> hosts) { _hosts = std::move(hosts); }
  // A host replaced in this process recovers from the old host's phaser
  // images (BucketHost::images) where it had any, the boot image elsewhere.
  // Merged over earlier replacements: a bucket the last host never touched
  // keeps the image an earlier one left.
  void replace_images(std::map<uint32_t, consensus::PhaserDurable> images) {
    for (auto& [bucket, image] : images) _replaced.insert_or_assign(bucket, std::move(image));
  }
  // Reads are the core's (its EntryReader, a coroutine): fetch hands the
  // request to `fetcher`, which answers BucketHost::fetched later.
  using Fetcher = std::function<void(uint32_t bucket, consensus::ParticipantId to,
                                     consensus::Position from, size_t bytes_max)>;
  void set_fetcher(Fetcher fetcher) { _fetcher = std::move(fetcher); }
  void fetch(uint32_t bucket, consensus::ParticipantId to, consensus::Position from,
             size_t bytes_max) override;

  // Records wait for room in the store.
  bool overflowing() const { return !_overflow.empty(); }
  // Stages the waiting records as the flusher makes room; returns when none
  // waits (or the store failed).
  reactor::Task<void> drain_overflow();
  // The store seq of the last record staged (0: none): awaiting its
  // durability covers every ticket issued so far, once nothing overflows.
  uint64_t last_seq() const { return _last_seq; }
  Ticket issued() const { return _issued; }
  // The store seq of the oldest staged record whose ticket is not known
  // durable yet: the batch to wait for next (none: nothing pending).
  std::optional<uint64_t> oldest_pending_seq() const {
    durable();  // pops what is durable already
    if (_staged.empty()) return std::nullopt;
    return _staged.front().second;
  }
  bool failed() const { return _failed; }

  // A checkpoint round begins (DESIGN §6, recovery.h): its marker record.
  // round_segment(): the segment the last marker went to, once it reached
  // the store (0: none yet).
  Ticket stage_round_marker();
  // A bucket's checkpoint (BucketHost::checkpoints), already encoded by the
  // caller, who checked that each record fits the store.
  Ticket stage_checkpoint(std::vector<EngineRecord> records);
  uint64_t round_segment() const { return _round.segment; }
  // Where the last marker went (segment_summary.h, the `round` file).
  const RoundPlace& round_place() const { return _round; }

 private:
  struct Waiting {
    Ticket ticket = 0;
    EngineRecord record;
    bool last = false;  // the last record of its stage call
  };
  Ticket stage(std::vector<EngineRecord> records);
  // Stages one record now if nothing waits and it fits; false: it must wait.
  bool try_stage(Ticket ticket, const EngineRecord& record, bool last);
  void index_staged(const EngineRecord& record);

  LogStore& _store;
  const EngineImage& _image;
  BucketIndex* _index = nullptr;
  Fetcher _fetcher;
  std::function<bool(uint32_t)> _hosts;
  std::map<uint32_t, consensus::PhaserDurable> _replaced;
  Ticket _issued = 0;
  uint64_t _last_seq = 0;
  std::deque<Waiting> _overflow;
  // Tickets whose last record is staged, with that record's seq, oldest
  // first; popped as the store's durable seq passes them.
  mutable std::deque<std::pair<Ticket, uint64_t>> _staged;
  mutable Ticket _durable = 0;
  bool _failed = false;
  RoundPlace _round;
};

}  // namespace coworker::bucket
