// Disk: one simulated participant's durable storage.
//
// Owned by its Participant and outliving each boot (a crash keeps it). Writes
// issued in one tick form one batch (write + fsync, the group commit of
// DESIGN §4); a batch becomes durable `latency` ticks later, batches in
// order. A crash loses every batch not yet durable. A hung disk completes
// nothing until it is released (the phaser issue's "stuck fdatasync").
//
// The durable image is one struct per hosted protocol, each folded from its
// persist records by the protocol's own apply(): the simulator recovers a
// participant exactly as a server would, from what reached the disk. Phaser
// records are folded a second time by the checkers' own rules
// (phaser_reference.h), and the two folds compared after every record.
#pragma once

#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include <map>

#include "consensus/membership_messages.h"
#include "consensus/paxos_types.h"
#include "consensus/phaser.h"
#include "consensus/prng.h"
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

// One alternative per hosted protocol. Membership mode writes
// MembershipRecords (its Paxos records inside).
using DiskRecord = std::variant<consensus::PersistRecord, consensus::MembershipRecord,
                                BucketRecord, CounterRecord, MembershipCheckpoint>;

struct DurableImage {
  consensus::Durable paxos;
  consensus::MembershipDurable membership;
  std::map<uint32_t, consensus::PhaserDurable> phasers;  // by bucket; logs kept
  uint32_t counter = 0;
  // The checkers' fold of the same phaser records (what the disk proves),
  // and the first record it forbade or the first difference between the
  // two folds, for the checkers to report.
  std::map<uint32_t, ReplicaReference> references;
  std::optional<std::string> fold_violation;
};

struct DiskOptions {
  Tick latency_min = 0;  // 0: durable within the tick it was written
  Tick latency_max = 0;
};

class Disk {
 public:
  using Ticket = uint64_t;  // writes are numbered from 1; 0 = nothing

  explicit Disk(DiskOptions options) : _options(options) {}

  // Queues records; returns the ticket that becomes durable with them.
  Ticket write(Tick now, consensus::Prng& prng, std::vector<DiskRecord> records);
  // Completes the batches due by `now` (none while hung).
  void tick(Tick now);
  Ticket durable() const { return _durable; }
  Ticket issued() const { return _issued; }
  bool idle() const { return _batches.empty(); }

  void crash();  // every batch not yet durable is lost
  void hang() { _hung = true; }
  void release() { _hung = false; }
  bool hung() const { return _hung; }

  const DurableImage& image() const { return _image; }
  // Before the first boot: a data directory prepared elsewhere (the
  // simulator's static start).
  void install(DurableImage image) {
    COWORKER_ASSERT(_issued == 0);
    _image = std::move(image);
  }
  uint64_t batches_completed() const { return _completed; }

 private:
  void apply(const DiskRecord& record);

  struct Batch {
    Tick written = 0;
    Tick due = 0;
    Ticket last = 0;
    std::vector<DiskRecord> records;
  };

  DiskOptions _options;
  DurableImage _image;
  std::deque<Batch> _batches;
  Ticket _issued = 0;
  Ticket _durable = 0;
  bool _hung = false;
  uint64_t _completed = 0;
};

}  // namespace coworker::sim
