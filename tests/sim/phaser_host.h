// PhaserHost: the phasers of one simulated participant — a thin adapter
// over the server's own driver, bucket::BucketHost (bucket/host.h), which
// holds the driver contract (persist → on_persisted in order, counter
// durable before every leadership start).
//
// One per participant boot, owned by the swarm driver (or, with membership,
// by the Participant); destroyed by a crash, rebuilt at restart from the
// participant's durable image — phasers recover exactly from what reached
// the disk. It adds only the simulated world: the tick of each call for the
// disk (SimStorage), and the participant's id on each effect.
#pragma once

#include <cstdint>
#include <map>

#include "bucket/host.h"
#include "consensus/phaser.h"
#include "consensus/prng.h"
#include "tests/sim/disk.h"
#include "tests/sim/sim_storage.h"
#include "tests/sim/network.h"
#include "tests/sim/workload.h"

namespace coworker::sim {

// The phasers of a membership-mode simulation (SimOptions::phasers): their
// configuration and the client side (phaser_layer.h).
struct PhaserStackOptions {
  consensus::Phaser::Config phaser;
  WorkloadOptions workload;
  uint32_t read_per_mille = 200;        // per tick: a lease read of a random bucket
  uint32_t client_drop_per_mille = 0;   // client packets lost while faults run
};

class PhaserHostEffects {
 public:
  virtual void send(ParticipantId from, ParticipantId to, consensus::PhaserMessage message) = 0;
  virtual void reply(ParticipantId at, const consensus::Reply& reply) = 0;
  virtual void report(ParticipantId at, uint32_t bucket, ParticipantId silent) = 0;
  virtual void leader_committed(ParticipantId at, const consensus::Write& write) = 0;
  virtual void repair(ParticipantId at, uint32_t bucket) = 0;
  // The membership's part of a checkpoint round (core 0's on a server:
  // Core::checkpoint_round), staged in the same tick; none without one.
  virtual void checkpoint_membership(ParticipantId) {}

 protected:
  ~PhaserHostEffects() = default;
};

class PhaserHost final : private bucket::HostEffects {
 public:
  PhaserHost(ParticipantId self, consensus::Phaser::Config base, Disk& disk,
             consensus::Prng& prng, PhaserHostEffects& effects);
  // The host that replaces `old` in the same boot (the participant arrived
  // anew as `self`): its phasers continue from the old ones' images, and it
  // says nothing before what the old host staged is durable (bucket/host.h).
  PhaserHost(ParticipantId self, PhaserHost& old);
  ParticipantId self() const { return _self; }

  // The membership says this is bucket's current government now.
  void government(Tick now, uint32_t bucket, const consensus::Government& government);
  void append(Tick now, uint32_t bucket, uint64_t token,
              std::vector<consensus::BucketEntry> messages);
  void deliver(Tick now, ParticipantId from, const consensus::PhaserMessage& message);
  // Completes due disk batches (reporting their tickets), then ticks the
  // phasers every `tick_every` ticks.
  void tick(Tick now, Tick tick_every);

  bucket::BucketHost::Growth prepare(Tick now, uint32_t bucket, uint64_t step,
                                     const std::vector<ParticipantId>& newcomers);
  void release_hold(Tick now, uint32_t bucket);

  const consensus::Phaser* phaser(uint32_t bucket) const { return _host.phaser(bucket); }
  // Appends this host took and has not answered yet, with their buckets: a
  // phaser answers every one while its host lives (phaser.h step 6 hands
  // back what waits when a leadership ends), so once quiet, none is left in
  // a bucket that can still commit.
  const std::map<uint64_t, uint32_t>& unanswered() const { return _unanswered; }

  // This participant's clock, in ms, a tick a millisecond: the simulated
  // time plus an offset of its own (0..28, from its id, no draw), so the
  // times leaders stamp on writes differ by who leads (connection expiry,
  // phaser.h step 7).
  uint64_t clock(Tick now) const { return now + (_self * 13) % 29; }

 private:
  // bucket::HostEffects.
  void send(ParticipantId to, consensus::PhaserMessage message) override;
  void reply(uint32_t bucket, const consensus::Reply& reply) override;
  void report(uint32_t bucket, ParticipantId silent) override;
  void committed(uint32_t bucket, const consensus::Write& write) override;
  void repair(uint32_t bucket) override;

  const ParticipantId _self;
  consensus::Phaser::Config _base;
  consensus::Prng& _prng;
  Disk& _disk;
  PhaserHostEffects& _effects;
  SimStorage _storage;
  bucket::BucketHost _host;
  static constexpr uint64_t checkpoint_ticks = 16;  // phaser ticks between rounds
  uint64_t _phaser_ticks = 0;
  std::map<uint64_t, uint32_t> _unanswered;  // token -> bucket
  // Retention, as the server's log store retires segments behind a round:
  // each round, an odd bucket's retained start moves to its commit end as
  // of the round before (even buckets keep everything, so acclimation by
  // catch-up stays covered). A fetch below it, or below a snapshot's start,
  // is answered by a snapshot (phaser.h step 9b).
  std::map<uint32_t, consensus::Position> _retained;
  std::map<uint32_t, consensus::Position> _round_end;
  // As Core::checkpoint_round: its marker, the promise counter, every
  // bucket's checkpoint, the membership's; one tick, so one disk batch.
  void checkpoint_round();
  void retain();
  consensus::Position retained_start(uint32_t bucket) const;
};

}  // namespace coworker::sim
