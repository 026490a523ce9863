// PhaserChecker: DESIGN §7's invariants over every bucket, checked after
// every step of a phaser swarm from what reached the disks.
//
// One per seed, owned by the swarm driver. It reads the world through
// PhaserWorld (ground-truth governments from the membership, what each
// participant's disk proves: committed logs and registers from the checkers'
// own fold of its records, phaser_reference.h, which the disk compares with
// PhaserDurable::apply's after every record) and hears from the workload (what was
// submitted, what was answered 2xx) and from the hosts (a leader committed a
// write; a lease read was served). Costs per step are bounded by the buckets,
// the governments and what changed.
//
// The checks (DESIGN §7):
//   1. acked ⇒ durable, log or register, on every member of its bucket's
//      current government, at every step; at quiescence committed exactly
//      once on every live member;
//   2. no phantom: every committed entry is one a client submitted, in the
//      bucket of its identifier, unchanged;
//   3. positions contiguous, and every replica's committed log is a prefix
//      of one truth per bucket, entry for entry. The truth grows from the
//      replicas' committed logs and from the writes leaders commit (each
//      held durably by every member then, check 5), whichever comes
//      first, each compared with the other: a position may be committed
//      and then retired everywhere (a snapshot above it) before any copy
//      folded its commit record; and the writes leaders commit chain,
//      each naming as prior the checksum of the write with entries
//      committed before it;
//   4. per connection, series increase along each bucket's log;
//   5. a leader commits a write only while every member of the current
//      government holds it durably (a stale leadership commits nothing that
//      a member could lose), and a lease read includes every append
//      answered 2xx before it;
//   6. exactly-once state (DESIGN §3, expiry): every replica's durable dedup
//      table, whenever its commit end is the newest committed write's end,
//      equals the checker's own fold of the committed writes (written from
//      DESIGN §3, not from consensus/dedup.h: connections with their last
//      window, expired by the times the writes carry, watermarks); and a
//      message every attempt of which was answered 409 connection_expired
//      is never logged.
// Liveness (every window completes) is the driver's end-of-run check.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "consensus/phaser.h"
#include "tests/sim/disk.h"
#include "tests/sim/network.h"

namespace coworker::sim {

class PhaserWorld {
 public:
  virtual uint32_t buckets() const = 0;
  // The current government as the membership log has it (ground truth).
  virtual consensus::Government government(uint32_t bucket) const = 0;
  // Hosts (each with one disk), and the disk of the host serving as `id`.
  virtual std::vector<ParticipantId> participants() const = 0;
  virtual const DurableImage& image(ParticipantId id) const = 0;
  virtual const DurableImage& host_image(ParticipantId host) const { return image(host); }
  // Up and still a member (not departed).
  virtual bool live(ParticipantId id) const = 0;
  // The host serving as `id` (0: none); hosts are ids unless they arrive anew.
  virtual ParticipantId host_of_id(ParticipantId id) const { return id; }
  // A member whose host gave its id up at a repair (disk.h repair_at_boot):
  // its copies were discarded, as a disk lost would be, and it holds
  // nothing as that id any more (check 1 counts the other members).
  virtual bool discarded(ParticipantId) const { return false; }

 protected:
  ~PhaserWorld() = default;
};

class PhaserChecker {
 public:
  explicit PhaserChecker(uint32_t buckets);

  // From the workload.
  void submitted(uint32_t bucket, const consensus::BucketEntry& entry);
  void acked(uint32_t bucket, const consensus::BucketEntry& entry, consensus::Position position);
  // Every attempt of this message was answered 409 connection_expired and
  // none can follow: it must never be logged.
  void refused(uint32_t bucket, const consensus::BucketEntry& entry);
  // From the hosts.
  void leader_committed(const PhaserWorld& world, ParticipantId leader,
                        const consensus::Write& write);
  void lease_read(ParticipantId leader, uint32_t bucket, consensus::Position commit_end);
  // From the driver: `host`'s copy of `bucket` holds a write no client sent
  // from `at` on (disk.h plant_write), with `resets` resets so far. Until
  // it is dropped (a reset) or replaced (a snapshot above `at`), checks 3
  // and 6 skip what it holds from `at`, and its host serving in the
  // bucket's government is a violation (ground truth).
  void planted(ParticipantId host, uint32_t bucket, consensus::Position at, uint64_t resets);
  bool holds_planted(ParticipantId host, uint32_t bucket) const {
    return _planted.count({host, bucket}) != 0;
  }
  // Where that planted write is, while the copy holds it.
  std::optional<consensus::Position> planted_at(ParticipantId host, uint32_t bucket) const {
    const auto found = _planted.find({host, bucket});
    if (found == _planted.end()) return std::nullopt;
    return found->second.first;
  }

  void after_step(const PhaserWorld& world);
  // True when every live member of every government holds the whole truth
  // and every acked message is committed: the run may end.
  // Buckets in `dead` (every replica gone for good) are exempt.
  bool settled(const PhaserWorld& world, const std::set<uint32_t>& dead, std::string* why) const;

  void fail(std::string why);
  bool violated() const { return _violation.has_value(); }
  const std::string& violation() const { return *_violation; }

  uint64_t acked_count() const { return _acked_count; }
  uint64_t committed_count() const;
  uint64_t reads() const { return _reads; }

 private:
  // Check 6's reference: a connection's committed state in one bucket.
  struct RefConnection {
    uint64_t last_seen = 0;
    uint64_t window = 0;
    std::vector<std::pair<uint64_t, consensus::Position>> positions;  // of the last window
  };
  struct Bucket {
    std::vector<consensus::BucketEntry> truth;         // the committed log
    std::set<std::string> refused;                     // bodies never to be logged
    // Check 6: the fold of the committed writes with entries, up to ref_end,
    // and those committed beyond a gap (reported out of order), by first.
    std::map<consensus::ConnectionId, RefConnection> ref;
    std::map<ParticipantId, uint64_t> ref_watermarks;
    uint64_t ref_time = 0;
    uint64_t ref_expired_before = 0;
    consensus::Position ref_end = 0;
    uint32_t ref_checksum = 0;  // of the newest folded write (with entries): the next one's prior
    std::map<consensus::Position, consensus::Write> ref_waiting;
    std::map<std::string, consensus::Position> where;  // body → position in truth
    std::map<consensus::Position, std::string> acked;  // position → body
    std::optional<consensus::Position> acked_max;
    std::map<consensus::ConnectionId, uint64_t> last_series;
  };
  struct Submitted {
    uint32_t bucket = 0;
    consensus::BucketEntry entry;
  };

  void extend_truth(uint32_t bucket, const consensus::BucketEntry& entry);
  void check_logs(const PhaserWorld& world);
  void check_acked_durable(const PhaserWorld& world);
  void fold_reference(Bucket& b, const consensus::Write& write);
  void check_dedup(const PhaserWorld& world);

  std::vector<Bucket> _buckets;
  std::map<std::string, Submitted> _submitted;          // by body
  std::map<std::string, consensus::Position> _acked_at;  // by body
  // Per (host, bucket): positions of its copy compared with the truth, and
  // the copy's resets then (a reset copy is compared again from its start).
  std::map<std::pair<ParticipantId, uint32_t>, std::pair<size_t, uint64_t>> _verified;
  // Copies holding a planted write: (host, bucket) → (at, resets then).
  std::map<std::pair<ParticipantId, uint32_t>, std::pair<consensus::Position, uint64_t>> _planted;
  bool still_planted(const PhaserWorld& world, ParticipantId host, uint32_t bucket,
                     const ReplicaReference& reference, uint64_t resets);
  // Check 6: what each replica's table was last compared at (its commit
  // end, connections and watermarks: a restart from a checkpoint changes
  // the table without moving the end).
  std::map<std::pair<ParticipantId, uint32_t>, std::tuple<consensus::Position, size_t, size_t>>
      _dedup_checked;
  std::optional<std::string> _violation;
  uint64_t _acked_count = 0;
  uint64_t _reads = 0;
};

}  // namespace coworker::sim
