// MemberHost: the membership stack of one simulated participant for one
// boot — the server's own driver, bucket::MembershipHost (the node, its
// BucketTable, persist-before-send, the government feed), plus the
// stand-ins for what the phasers do not do yet: probes between a bucket
// leader and its replicas (reports of silent ones) and a migration executor
// that proposes the acks of the table's next steps (growth: issue 11).
//
// Owned by its Participant (participant.h), which supplies the storage (its
// Disk, through SimStorage) and the effects (network, observers, its
// phasers). Addresses are host numbers in decimal; a host keeps its address
// while its arrival id changes (departure, new arrival).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "bucket/membership_host.h"
#include "bucket/table.h"
#include "consensus/membership_node.h"
#include "tests/sim/member_packet.h"

namespace coworker::sim {

using consensus::ParticipantId;
using consensus::Tick;

struct MembershipSimOptions {
  consensus::ClusterParams params{0x5eed, 16, 3};
  consensus::MembershipTiming timing;
  // > 0: static start — hosts 1..N are members (arrival ids 1..N) from the
  // beginning, every current government at its target; 0: host 1
  // bootstraps and the others arrive when the scenario boots them.
  uint32_t static_members = 0;
  bool executor = true;  // propose acks for next steps (the stand-in)
  // The engine's own migrations (bucket/membership_host.h step 5), with
  // phasers: shrink, reorder, growth of empty buckets.
  bool migrations = false;
  // Static start with one member per current government (start_one_member).
  bool one_member_start = false;
  Tick executor_delay_min = 5;
  Tick executor_delay_max = 40;
  Tick executor_retry_ticks = 150;
  uint32_t executor_race_per_mille = 100;  // propose although a new replica is silent
  bool probes = true;
  // A host started with other cluster parameters (tests: its arrival is
  // refused with the reason). 0: none.
  ParticipantId foreign_host = 0;
  uint32_t foreign_buckets = 0;   // 0: the cluster's
  std::optional<uint64_t> foreign_cluster;  // 0: joins not knowing the cluster id

  consensus::ClusterParams params_for(ParticipantId host) const {
    consensus::ClusterParams own = params;
    if (host != foreign_host) return own;
    if (foreign_buckets != 0) own.buckets = foreign_buckets;
    if (foreign_cluster) own.cluster = *foreign_cluster;
    return own;
  }
};

// A host's address, and back.
std::string address_of(ParticipantId host);
ParticipantId host_of(const std::string& address);

// The durable image a static start writes on each host's disk.
consensus::MembershipDurable static_image(const MembershipSimOptions& options, ParticipantId host,
                                          uint64_t seed);
uint64_t data_dir_of(uint64_t seed, ParticipantId host);

class MemberHost {
 public:
  MemberHost(ParticipantId host, uint32_t hosts, uint64_t seed, const MembershipSimOptions& options,
             const consensus::Paxos::Timing& timing, const consensus::Paxos::Limits& limits,
             consensus::Prng& prng, const consensus::MembershipDurable& recovered,
             bucket::HostStorage& storage, bucket::MembershipEffects& effects);

  bucket::MembershipHost& engine() { return _engine; }
  consensus::MembershipNode& node() { return _engine.node(); }
  const consensus::MembershipNode& node() const { return _engine.node(); }
  bucket::BucketTable& table() { return _engine.table(); }
  const bucket::BucketTable& table() const { return _engine.table(); }

  // The stand-in phasers, once per tick after the node's tick: probes go
  // into `probes` as (host, probe); the node's outputs (acks proposed,
  // reports sent) into `outputs`.
  void tick_phasers(Tick now, std::vector<std::pair<ParticipantId, Probe>>& probes,
                    std::vector<consensus::MembershipOutput>& outputs);
  // A probe for this host: the answer to send back, if any.
  std::optional<Probe> on_probe(Tick now, const Probe& probe);

  uint64_t acks_proposed() const { return _acks_proposed; }

 private:
  struct Migration {
    uint64_t step = 0;
    Tick due = 0;
    Tick proposed_at = 0;
  };
  void probe_replicas(Tick now, std::vector<std::pair<ParticipantId, Probe>>& probes,
                      std::vector<consensus::MembershipOutput>& outputs);
  void execute_steps(Tick now, std::vector<consensus::MembershipOutput>& outputs);
  bool answered(ParticipantId id, Tick now) const;

  const ParticipantId _host;
  const MembershipSimOptions& _options;
  consensus::Prng& _prng;
  bucket::MembershipHost _engine;

  Tick _probe_due = 0;
  std::map<ParticipantId, Tick> _pong;            // last answer, by arrival id
  std::map<ParticipantId, Tick> _probing_since;   // first probe of the current streak
  std::map<uint32_t, Migration> _migrations;      // by bucket
  uint64_t _acks_proposed = 0;
};

}  // namespace coworker::sim
