// PhaserHost: the phasers of one simulated participant, driven the way the
// server's bucket host drives them.
//
// One per participant boot, owned by the swarm driver (or, with membership,
// by the Participant); destroyed by a crash, rebuilt at restart from the
// participant's durable image — phasers recover exactly from what reached
// the disk. It maps each PhaserOutput onto the world:
//   persist → one disk write (a tick's writes share one batch); when that
//             write is durable, on_persisted(ticket) for each record, in order
//   send    → the network, at once (a phaser never sends what depends on
//             a persist of the same output)
//   reply   → the client
//   report  → the membership (a replica owed an ack for the departure timeout)
// It also keeps the participant's promise counter: a leadership start bumps
// it and makes it durable before calling start_leadership, so a promise is
// never reused (DESIGN §1).
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>

#include "consensus/phaser.h"
#include "consensus/prng.h"
#include "tests/sim/disk.h"
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

 protected:
  ~PhaserHostEffects() = default;
};

class PhaserHost {
 public:
  PhaserHost(ParticipantId self, consensus::Phaser::Config base, Disk& disk,
             consensus::Prng& prng, PhaserHostEffects& effects);

  // The membership says this is bucket's current government now.
  void government(Tick now, uint32_t bucket, const consensus::Government& government);
  void append(Tick now, uint32_t bucket, uint64_t token,
              std::vector<consensus::BucketEntry> messages);
  void deliver(Tick now, ParticipantId from, const consensus::PhaserMessage& message);
  // Completes due disk batches (reporting their tickets), then ticks the
  // phasers every `tick_every` ticks.
  void tick(Tick now, Tick tick_every);

  const consensus::Phaser* phaser(uint32_t bucket) const;

 private:
  struct PendingWrite {
    Disk::Ticket ticket = 0;
    uint32_t bucket = 0;
    std::vector<uint64_t> phaser_tickets;
  };
  struct PendingStart {
    Disk::Ticket ticket = 0;
    uint32_t bucket = 0;
    consensus::Promise promise;
  };

  consensus::Phaser& phaser_for(uint32_t bucket);
  void handle(Tick now, uint32_t bucket, consensus::PhaserOutput output,
              const consensus::WritePtr& leading_before);
  // Calls fn(phaser) and handles its output, noticing a leader's commit.
  template <typename Fn>
  void call(Tick now, uint32_t bucket, Fn&& fn);
  void maybe_start(Tick now, uint32_t bucket);

  ParticipantId _self;
  consensus::Phaser::Config _base;
  Disk& _disk;
  consensus::Prng& _prng;
  PhaserHostEffects& _effects;
  std::map<uint32_t, std::unique_ptr<consensus::Phaser>> _phasers;  // by bucket
  std::deque<PendingWrite> _writes;
  std::deque<PendingStart> _starts;
  uint64_t _counter = 0;  // the promise counter, as last written
};

}  // namespace coworker::sim
