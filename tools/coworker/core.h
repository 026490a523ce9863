// Core: one core's share of a participant — its log, the engine's storage
// over it, the BucketHost of its buckets, and the client appends waiting
// for their phasers.
//
// Created by the core's main task once its LogStore is open, used only by
// that core's coroutines, destroyed after the core stopped (close() first).
// Two background tasks per core:
//   - the ticker: every tick, the phasers tick (resends, reports), appends
//     past their deadline are answered 503, and on core 0 the membership
//     host ticks;
//   - the pump: waits for the oldest staged record's batch to be durable,
//     then tells the hosts (on_durable), so acks and answers go out one
//     turn after the fdatasync that covers them. It also moves records that
//     found the batch full into the log as room appears.
// Effects of the phasers leave through HostEffects: sends and reports go to
// core 0 (the peer links and the membership live there), replies wake the
// append waiting for them.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <set>
#include <unordered_map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "bucket/bucket_index.h"
#include "bucket/entry_reader.h"
#include "bucket/host.h"
#include "bucket/log_store.h"
#include "bucket/store_storage.h"
#include "consensus/phaser_codec.h"
#include "reactor/sync.h"
#include "reactor/task.h"
#include "tools/coworker/metrics.h"

namespace coworker::server {

class Participant;

// What /v1/cluster shows of one bucket this core hosts.
struct BucketView {
  uint32_t bucket = 0;
  consensus::Promise promise;
  consensus::Position commit = 0;
  bool serving = false;
};

class Core final : private bucket::HostEffects {
 public:
  // `resets`: buckets this core discards before its first host (bucket/repair.h
  // step 3; none unless recovery found damage).
  Core(Participant& participant, unsigned core, std::unique_ptr<bucket::LogStore> store,
       std::unique_ptr<bucket::BucketIndex> index, std::vector<uint32_t> resets);
  ~Core();
  Core(const Core&) = delete;
  Core& operator=(const Core&) = delete;

  unsigned index() const { return _core; }
  bucket::BucketHost& host() { return *_host; }
  bucket::StoreStorage& storage() { return _storage; }
  bucket::LogStore& store() { return *_store; }

  // Starts the ticker and the pump (spawned on this core's loop).
  void start();
  // Verifies, in the background, the segments the start did not read
  // (bucket/scrub.h): about scrub_bytes_per_second, 1 MiB at a time.
  void start_scrub(std::vector<bucket::SealedSegment> unread);
  static constexpr uint64_t scrub_bytes_per_second = 64u << 20;
  struct ScrubStats {
    uint64_t segments = 0;  // verified whole
    uint64_t bytes = 0;
    uint64_t damaged = 0;   // segments with damage found
  };
  const ScrubStats& scrub_stats() const { return _scrub; }
  // The phasers, once this participant has an arrival id (before any
  // government reaches this core).
  void create_host(consensus::ParticipantId self);
  // This participant departed and arrived anew under another id: the
  // phasers of the old id go (their waiting appends are answered 503) and
  // the new id's start from what the disk holds. Until growth brings the
  // new id into governments (the phaser issue's verified prefixes), they
  // only answer that they are not members.
  void replace_host(consensus::ParticipantId self);
  bool has_host() const { return _host != nullptr; }
  // Stops the background tasks and closes the log (flushes what is staged).
  reactor::Task<void> close();

  // Whether this core's phaser of the bucket takes client messages: it
  // leads, or runs its leadership start (then it queues them).
  bool accepts(uint32_t bucket) const;
  // Appends messages of one bucket this core hosts and waits for every
  // message's outcome, or `timeout_ticks` (then unavailable: the outcome
  // is unknown, the client resubmits). Messages handed back by a leadership
  // that ended (phaser.h step 6) come back in the reply, for dispatch.h to
  // take to the next leader.
  reactor::Task<consensus::Reply> append(
      uint32_t bucket, std::vector<consensus::BucketEntry> messages, uint64_t timeout_ticks);
  uint64_t ticks_for(std::chrono::milliseconds duration) const;
  // Delivers every tick the monotonic clock says is due and was not yet
  // (normally none or one). The state machines count time in ticks, and a
  // read lease runs for a number of them (DESIGN §3): ticks counted by timer
  // firings fall behind whenever the loop is late or the process is paused
  // (SIGSTOP, a stalled VM), and a participant paused past its departure
  // still held a read lease for most of a lease once it woke. The ticker
  // calls it; core 0 also calls it before it acts on a membership message
  // or answers whether it may serve a lease read, so nothing is decided on
  // a stale count in the turn the process wakes in.
  void catch_up();
  // Something was staged: the pump has work.
  void staged() { _staged.notify_all(); }
  // Completes once `ticket` is durable (or the core stops: false).
  reactor::Task<bool> durable(bucket::HostStorage::Ticket ticket);

  std::vector<BucketView> buckets() const;
  // /metrics: the buckets this core hosts, and the dedup tables' size.
  std::vector<BucketGauge> bucket_gauges() const;
  struct Tracked {
    uint64_t connections = 0;
    uint64_t bytes = 0;
  };
  Tracked tracked() const;

  // A page of committed entries of a bucket this core hosts, as this
  // replica has them: `entries` from `from`, `next` after the last.
  struct Page {
    bucket::EntryPage entries;  // views into the buffers it owns
    consensus::Position next = 0;
  };
  enum class Serve : uint8_t { local, leader };
  enum class ReadRefusal : uint8_t { not_hosted, not_leader, retained, corrupt, io };
  reactor::Task<Result<Page, ReadRefusal>> read(uint32_t bucket, consensus::Position from,
                                                size_t limit, Serve serve);
  // This replica's readable end of the bucket: committed and indexed.
  consensus::Position readable_end(uint32_t bucket) const;
  // The first position still in this core's log (retention; 0 before any).
  consensus::Position retained_start(uint32_t bucket) const {
    return _index->retained_start(bucket);
  }
  // Long-poll (DESIGN §3 wait_ms): until the bucket's readable end passes
  // `from`, `deadline`, or the core stops. False when the bucket already
  // has long_polls_per_bucket_max readers waiting (the caller answers 429).
  // Woken per bucket by its commits, never by a scan of every waiter.
  static constexpr size_t long_polls_per_bucket_max = 1000;
  reactor::Task<bool> wait_readable(uint32_t bucket, consensus::Position from,
                                    std::chrono::steady_clock::time_point deadline);

 private:
  struct PendingAppend {
    consensus::Reply reply;
    reactor::Event done;
    bool expired = false;   // answered unavailable without a reply
    uint64_t deadline = 0;  // in ticks of this core
  };

  // Ticks follow the monotonic clock (see catch_up()).
  reactor::Task<void> run_ticker();
  void tick_once();
  reactor::Task<void> run_pump();
  // Retention (DESIGN §6): once the policy lets segments go, a checkpoint
  // round (its marker, the counter, every bucket's checkpoint, on core 0 the
  // membership's and the connection block), durable, then the segments
  // below the target.
  reactor::Task<void> run_retention();
  // A round is due without retention too, so a restart reads the log only
  // from the newest one (recovery.h, summaries): once per segment at most,
  // and only after 4 times the last round's bytes were written since it.
  bool round_due() const;
  // 0: no round (a checkpoint too large for a record, logged).
  bucket::HostStorage::Ticket checkpoint_round();
  enum class RoundMade : uint8_t { durable, none, failed };
  // A checkpoint round staged and made durable, then named in the `round`
  // file (segment_summary.h); none: checkpoint_round made none, or naming
  // it failed (logged); failed: the log failed.
  reactor::Task<RoundMade> make_round();
  reactor::Task<Status> name_round(bucket::RoundPlace place);
  // A bucket's checkpoint records encoded for the log; nullopt when one is
  // larger than a log record may be (logged once per bucket).
  std::optional<std::vector<bucket::EngineRecord>> encode_checkpoint(
      uint32_t bucket, const std::vector<consensus::PhaserRecord>& records);
  // A fetch below the retained start: a snapshot, if it fits a record.
  void answer_retained(uint32_t bucket, consensus::ParticipantId to);
  reactor::Task<void> run_fetch(uint32_t bucket, consensus::ParticipantId to,
                                consensus::Position from, size_t bytes_max);
  void expire_appends();
 public:
  // A segment's seal is durable (LogStore::Config::sealed): its summary.
  void sealed(const bucket::SealedSegment& sealed);

 private:
  reactor::Task<void> write_summary(bucket::SegmentSummary summary);
  reactor::Task<void> run_scrub(std::vector<bucket::SealedSegment> unread);
  // One segment; false: damage found (logged, its summary and the round file deleted).
  reactor::Task<bool> scrub_segment(const bucket::SealedSegment& segment);

  // bucket::HostEffects.
  void send(consensus::ParticipantId to, consensus::PhaserMessage message) override;
  void reply(uint32_t bucket, const consensus::Reply& reply) override;
  void report(uint32_t bucket, consensus::ParticipantId silent) override;
  void committed(uint32_t bucket, const consensus::Write& write) override;
  void repair(uint32_t bucket) override;
  void commit_staged(uint32_t bucket) override;
  void copy_reset(uint32_t bucket) override;
  void expire_polls();

  Participant& _participant;
  const unsigned _core;
  std::unique_ptr<bucket::LogStore> _store;
  std::unique_ptr<bucket::BucketIndex> _index;
  std::vector<uint32_t> _resets;  // bucket/repair.h step 3, until the first host
  bucket::StoreStorage _storage;
  bucket::EntryReader _reader;
  std::unique_ptr<bucket::BucketHost> _host;
  consensus::MessageEncoder _encoder;  // send(): a write encoded once for its replicas
  reactor::Event _staged;    // notified when records are staged
  reactor::Event _advanced;  // notified when durability advanced
  bool _closing = false;
  uint64_t _ticks = 0;
  std::chrono::steady_clock::time_point _ticks_start{};  // tick k is due at start + k * tick
  uint64_t _next_token = 1;
  std::map<uint64_t, PendingAppend*> _appends;  // by token: oldest (first deadline) first
  reactor::TaskGroup _tasks;
  ScrubStats _scrub;
  uint64_t _round_segment = 0;  // the segment the newest durable round is in
  uint64_t _round_refused_segment = 0;  // a round could not be staged in it
  uint64_t _round_bytes = 0;    // the payload bytes of the last round staged
  uint64_t _round_written = 0;  // the store's bytes written when it was staged
  std::set<uint32_t> _oversized;  // buckets whose checkpoint was too large (logged)

  // Long-poll readers, per bucket: the event their commits notify, how many
  // wait; and their deadlines, soonest first (the ticker notifies the
  // bucket of each one that passed).
  struct Polls {
    reactor::Event changed;
    size_t waiting = 0;
  };
  std::unordered_map<uint32_t, std::unique_ptr<Polls>> _polls;
  std::multimap<std::chrono::steady_clock::time_point, uint32_t> _poll_deadlines;
};

}  // namespace coworker::server
