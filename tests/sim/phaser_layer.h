// PhaserLayer: phasers over the real membership log (issue 5 on issue 4) —
// the client side of a membership-mode simulation with SimOptions::phasers.
//
// The participants host the phasers (participant.h: a PhaserHost fed by
// BucketTable::take_changes(), reads gated by MembershipNode::
// holds_read_lease(), reports into report_silent(), a stuck disk into
// set_stuck()). This layer, installed as a checker and owned by the
// Simulation, plays everything outside them once per tick: the clients
// (workload.h) and their packets, lease reads at every participant that
// believes it leads, and the PhaserChecker, whose ground truth is the
// reference bucket table the MembershipChecker rebuilds from the decided log.
// Settling waits for every window and for every live member to hold the
// whole log.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "consensus/prng.h"
#include "tests/sim/checker.h"
#include "tests/sim/phaser_checker.h"
#include "tests/sim/phaser_host.h"
#include "tests/sim/stream_meter.h"
#include "tests/sim/workload.h"

namespace coworker::sim {

class Simulation;

class PhaserLayer final : public Checker, public PhaserWorld {
 public:
  PhaserLayer(Simulation& sim, const PhaserStackOptions& options, uint32_t buckets,
              uint32_t hosts, uint64_t seed);

  const char* name() const override { return "phasers"; }
  void after_tick(Simulation& sim) override;
  std::optional<std::string> unsettled(const Simulation& sim) const override;

  // Faults stop: no client loss, no new windows.
  void heal();

  // From the participants' phaser hosts.
  void reply(ParticipantId host, const consensus::Reply& reply);
  void leader_committed(ParticipantId host, const consensus::Write& write);
  void repair(ParticipantId host, uint32_t bucket);
  // A phaser message a host sends: streams are metered (stream_meter.h).
  void sent(const PhaserPacket& packet);
  // One handed to `host` (before its phasers take it).
  void delivered(ParticipantId host, const PhaserPacket& packet);

  const PhaserChecker& checker() const { return _checker; }
  const Workload& workload() const { return _workload; }

  // PhaserWorld: the reference table's governments, the hosts' disks.
  uint32_t buckets() const override { return _buckets; }
  consensus::Government government(uint32_t bucket) const override;
  std::vector<ParticipantId> participants() const override;
  const DurableImage& image(ParticipantId id) const override;
  const DurableImage& host_image(ParticipantId host) const override;
  bool live(ParticipantId id) const override;
  bool discarded(ParticipantId id) const override;
  // The host serving as arrival id `id` (0: not a member, or an id its
  // host gave up at a repair): a host that arrived anew serves under a new
  // id, with the same disk.
  ParticipantId host_of_id(ParticipantId id) const override;
  // From the driver (disk.h plant_write).
  void planted(ParticipantId host, uint32_t bucket, consensus::Position at);

 private:
  struct ClientPacket {
    Tick deliver = 0;
    uint64_t sequence = 0;
    bool request = true;
    AppendAttempt attempt;
    consensus::Reply reply;
  };

  // The host at the address member `id` arrived with (0: not a member),
  // whether or not it still serves as `id`.
  ParticipantId host_at_address_of(ParticipantId id) const;
  void deliver_clients(Tick now);
  void serve_reads();
  void check_void_members();
  StreamMeter::Disk stream_disk(ParticipantId id, uint32_t bucket) const;
  std::set<uint32_t> dead_buckets() const;

  Simulation& _sim;
  PhaserStackOptions _options;
  uint32_t _buckets;
  uint32_t _hosts;
  consensus::Prng _prng;
  PhaserChecker _checker;
  Workload _workload;
  StreamMeter _streams;
  std::vector<ClientPacket> _clients;
  uint64_t _sequence = 0;
  bool _healed = false;
};

}  // namespace coworker::sim
