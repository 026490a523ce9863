// Disk: one simulated participant's durable storage.
//
// Owned by its Participant and outliving each boot (a crash keeps it). Writes
// issued in one tick form one batch (write + fsync, the group commit of
// DESIGN §4); a batch becomes durable `latency` ticks later, batches in
// order. A crash loses every batch not yet durable, except that the first
// of them, the one a server would be writing (its log store writes one
// batch at a time, each after the previous one's fdatasync), may have
// reached the disk whole before its fdatasync returned: then the restart
// recovers it (issue 19 point 4), though nothing that waited for it was
// sent. With log files it may instead be torn, and the records recovery
// keeps of it (those before the tear) are recovered too. Which, is drawn
// from the disk's own stream. A hung disk completes nothing until it is
// released (the phaser issue's "stuck fdatasync"), and a stuck fdatasync
// may end in failure (issue 19 point 4, `end_hang`): a server's log store
// then fails for good and the process exits (bucket/log_store.h,
// "Errors"), so the caller crashes the participant at once, and the batch
// that was being synced is in doubt like any crash's — kept whole, torn or
// lost.
//
// The durable image is one struct per hosted protocol, each folded from its
// persist records by the protocol's own apply(). Phaser records are folded a
// second time by the checkers' own rules (phaser_reference.h), and the two
// folds compared after every record.
//
// Real bytes (issue 19 point 3): every record of the membership-mode
// protocols (membership, phaser, counter, membership checkpoint) is also
// encoded as the log-store record a server writes (bucket/engine_records.h)
// and, once durable, folded by the server's replay fold (EngineImage). A
// boot recovers from that fold, `recovered()`, as a server recovers from
// its log. At every crash the two folds are compared, and a record the
// server's fold refuses (it would mark the bucket damaged) is a violation:
// nothing in the simulated disk is ever damaged. A disk with `files` also
// writes those records as the server's log files (log_files.h): its crash
// may tear the batch being written, and the restart recovers from what
// bucket/recovery.cc reads back. At each crash, damage at rest is probed on
// a copy of those files (log_files.h step 5; issue 19 point 4): recovery
// must report it, and what the server's repair plan (bucket/repair.h)
// keeps of the damaged copy — every bucket it does not reset, and the
// membership state and counter when it resets nothing — must be what the
// intact log holds: damage is never served. (The restart itself goes on
// from the intact files.) A family may also damage the log itself while a
// participant is down (damage_at_rest); its next boot then runs the
// server's repair plan and writes its records (repair_at_boot), and what
// it starts from must be this disk's own fold, repaired.
// (The Paxos families' records have no log-store form: they stay in memory.)
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <variant>
#include <vector>

#include <map>

#include "bucket/engine_records.h"
#include "consensus/membership_messages.h"
#include "consensus/paxos_types.h"
#include "consensus/phaser.h"
#include "consensus/prng.h"
#include "tests/sim/log_files.h"
#include "tests/sim/phaser_reference.h"

namespace coworker::sim {

using consensus::Tick;

// A phaser's record, tagged with its bucket.
struct BucketRecord {
  uint32_t bucket = 0;
  consensus::PhaserRecord record;
};
// The participant's promise counter, bumped and made durable before every
// leadership start (DESIGN §1 "promise").
struct CounterRecord {
  uint32_t counter = 0;
};

// The whole membership state, replacing what the records before it folded
// to (the log store's checkpoint rounds, DESIGN §6).
struct MembershipCheckpoint {
  consensus::MembershipDurable durable;
};

// A repair's reset (bucket/repair.h step 3): the bucket's records before it
// count no more; participant_bucket for the promise counter.
struct BucketReset {
  uint32_t bucket = 0;
};

// The first record of a checkpoint round (bucket/recovery.h step 4): the
// records after it, in the same batch, restate the participant's whole
// state (phaser_host.h).
struct RoundMarker {};

// One alternative per hosted protocol. Membership mode writes
// MembershipRecords (its Paxos records inside).
using DiskRecord = std::variant<consensus::PersistRecord, consensus::MembershipRecord,
                                BucketRecord, CounterRecord, MembershipCheckpoint, BucketReset,
                                RoundMarker>;

struct DurableImage {
  consensus::Durable paxos;
  consensus::MembershipDurable membership;
  std::map<uint32_t, consensus::PhaserDurable> phasers;  // by bucket; logs kept
  uint32_t counter = 0;
  // The checkers' fold of the same phaser records (what the disk proves),
  // and the first record it forbade or the first difference between the
  // two folds, for the checkers to report.
  std::map<uint32_t, ReplicaReference> references;
  // Resets folded per bucket (a BucketReset of a repair, a phaser's
  // ResetRecord of a copy offered and found wrong): a copy discarded,
  // which the checkers then verify again from its start.
  std::map<uint32_t, uint64_t> resets;
  std::optional<std::string> fold_violation;
};

struct DiskOptions {
  Tick latency_min = 0;  // 0: durable within the tick it was written
  Tick latency_max = 0;
  bool files = false;  // write the server's log files (log_files.h)
};

class Disk {
 public:
  using Ticket = uint64_t;  // writes are numbered from 1; 0 = nothing

  // `seed`: the disk's own stream (what a crash keeps), apart from every other.
  Disk(DiskOptions options, uint64_t seed);

  // Queues records; returns the ticket that becomes durable with them.
  Ticket write(Tick now, consensus::Prng& prng, std::vector<DiskRecord> records);
  // Completes the batches due by `now` (none while hung).
  void tick(Tick now);
  Ticket durable() const { return _durable; }
  Ticket issued() const { return _issued; }
  bool idle() const { return _batches.empty(); }

  // Every batch not yet durable is lost, but the first may be kept whole.
  void crash();
  uint64_t batches_kept_at_crash() const { return _kept_at_crash; }
  // The last ticket of which the latest crash left records on the disk
  // (all of them, or a first part of a torn batch); 0: it kept nothing.
  Ticket kept_through() const { return _kept_through; }
  // What the latest crash did to the batches not yet durable, for traces.
  const std::string& last_crash() const { return _last_crash; }
  uint64_t batches_torn_at_crash() const { return _torn_at_crash; }
  uint64_t records_kept_from_torn() const { return _records_kept_from_torn; }
  void hang() { _hung = true; }
  void release() { _hung = false; }
  bool hung() const { return _hung; }
  // The stuck fdatasync of a hung disk returns: ok (as release()), or,
  // drawn from the disk's own stream when a batch was being written,
  // failed. After `failed` the caller must crash the participant before
  // anything else touches the disk (asserted).
  enum class SyncEnd { ok, failed };
  [[nodiscard]] SyncEnd end_hang();
  uint64_t syncs_failed() const { return _syncs_failed; }
  // Damage at rest probed at crashes, and those a repair would reset.
  uint64_t damage_probes() const { return _damage_probes; }
  uint64_t damage_repairs() const { return _damage_repairs; }
  uint64_t repairs_at_boot() const { return _damage_repairs_at_boot; }
  // The last recovery folded nothing from the files (recovery.h step 4b).
  bool image_from_boot() const { return _files != nullptr && _files->image_from_boot(); }
  // The latest repair at boot's plan: what it found damaged, for traces.
  const std::string& last_repair() const { return _last_repair; }
  bool last_repair_kept_id() const { return _last_repair_kept_id; }
  // Damage at rest in the log itself (log_files.h step 6), while the
  // participant is down: what was done, or nothing when no record lies
  // below the last batch. Its next boot must repair (repair_at_boot).
  std::optional<std::string> damage_at_rest(
      LogFiles::DamageTarget target = LogFiles::DamageTarget::any,
      const Aimed& aim = {});
  // While the participant is down: a committed write no client sent at the
  // end of one bucket's copy (register and commit records, checksums
  // valid: a bug, or damage no checksum caught), durable at once. Its
  // copy is then an offer that must never be served (phaser.h step 9f).
  // Nothing when the disk holds no bucket. With an aim, in its bucket and
  // up to its end (above the copy's commit end): the log's next write then
  // starts where the planted one ends, so only chained checksums keep the
  // copy from taking it (phaser.h step 3, mutation 36).
  struct PlantAim {
    uint32_t bucket = 0;
    consensus::Position end = 0;
  };
  struct Planted {
    uint32_t bucket = 0;
    consensus::Position at = 0;
    consensus::Position end = 0;
  };
  std::optional<Planted> plant_write(std::optional<PlantAim> aim = std::nullopt);
  // At boot, before anything starts: when the latest recovery found
  // damage, the server's repair plan (bucket/repair.h) applied to what
  // the boot starts from, and its records (the identity without id, then
  // the resets) made durable at once, as the server waits for them before
  // its membership starts. Then what the boot starts from must be the
  // disk's own fold of every record written, repaired: no bucket kept
  // from the damaged copy differs from what was written. Returns the id
  // given up (0 when the participant had none), or nothing when no repair
  // was needed.
  std::optional<consensus::ParticipantId> repair_at_boot();

  const DurableImage& image() const { return _image; }
  // The log files (nothing without DiskOptions::files), for statistics.
  const LogFiles* files() const { return _files.get(); }
  // What a server's replay of this log recovers: what a boot starts from.
  // (Folded when asked: the batches completed since the last call are
  // encoded, written to the files and folded then, so a participant that
  // never restarts costs nothing more.)
  const bucket::EngineImage& recovered();
  // Before the first boot: a data directory prepared elsewhere (the
  // simulator's static start). Its membership state goes to the server's
  // fold as a membership checkpoint record, as repair writes one.
  void install(DurableImage image);

 private:
  struct Batch;
  // Durable (Synced::yes), or kept whole at a crash (no): folded, its
  // records then moved out.
  void complete(Batch& batch, LogFiles::Synced synced = LogFiles::Synced::yes);
  void tear(const Batch& batch);
  void apply(const DiskRecord& record);
  void apply_engine(const bucket::EngineRecord& record);
  void report(std::string violation);
  void probe_damage();  // after the crash's recovery, from `_engine`
  void start_from(LogFiles::Recovered recovered);
  std::optional<std::string> check_repaired(bool unattributed);  // repair_at_boot's check
  void forget_bucket(uint32_t bucket);  // a reset, in this disk's own fold

  struct Batch {
    Tick written = 0;
    Tick due = 0;
    Ticket last = 0;
    std::vector<DiskRecord> records;
    // Each write's ticket, with the end of its records in `records`.
    std::vector<std::pair<size_t, Ticket>> writes;
  };

  DiskOptions _options;
  consensus::Prng _faults;
  consensus::Prng _damage;  // step 4's draws: a stream of their own, the faults' unchanged
  uint64_t _damage_probes = 0;
  uint64_t _damage_repairs = 0;
  uint64_t _damage_repairs_at_boot = 0;
  std::string _last_repair;
  bool _last_repair_kept_id = false;
  uint64_t _kept_at_crash = 0;
  Ticket _kept_through = 0;
  std::string _last_crash;
  uint64_t _torn_at_crash = 0;  // recovery cut a torn tail
  uint64_t _records_kept_from_torn = 0;
  std::unique_ptr<LogFiles> _files;
  std::optional<bucket::CoreReport> _report;  // the latest recovery's, when it found damage
  DurableImage _image;
  bucket::EngineImage _engine;
  struct Unfolded {
    std::vector<DiskRecord> records;
    LogFiles::Synced synced = LogFiles::Synced::yes;
  };
  std::vector<Unfolded> _unfolded;  // durable batches not yet in _engine
  uint64_t _engine_seq = 0;  // the log-store seq of the next engine record
  std::deque<Batch> _batches;
  Ticket _issued = 0;
  Ticket _durable = 0;
  bool _hung = false;
  bool _sync_failed = false;  // end_hang said failed: only crash() may follow
  uint64_t _syncs_failed = 0;
};

}  // namespace coworker::sim
