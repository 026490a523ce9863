// MemberHost: the membership stack of one simulated participant for one
// boot — its MembershipNode, the BucketTable the node feeds, and the
// stand-ins for the phasers this issue does not run yet: probes between a
// bucket leader and its replicas (reports of silent ones) and a migration
// executor that proposes the acks of the table's next steps.
//
// Owned by its Participant (participant.h), which drives it in membership
// mode: the Participant enforces persist-before-send on every
// MembershipOutput and hands each released output back through
// node().apply(). Addresses are host numbers in decimal; a host keeps its
// address while its arrival id changes (departure, new arrival).
//
// For issue 5 (phasers) the host is where the phaser side plugs in: after
// each released output, table().take_changes() lists the buckets whose
// current government changed (Phaser::on_government / start_leadership),
// node().holds_read_lease() answers the read-lease question, and
// node().report_silent() / node().set_stuck() are the two inputs back.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

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
  bool executor = true;  // propose acks for next steps
  Tick executor_delay_min = 5;
  Tick executor_delay_max = 40;
  Tick executor_retry_ticks = 150;
  uint32_t executor_race_per_mille = 100;  // propose although a new replica is silent
  bool probes = true;
  // A host started with other cluster parameters (tests: its arrival is
  // refused with the reason). 0: none.
  ParticipantId foreign_host = 0;
  uint32_t foreign_buckets = 0;

  consensus::ClusterParams params_for(ParticipantId host) const {
    consensus::ClusterParams own = params;
    if (host == foreign_host) own.buckets = foreign_buckets;
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
             consensus::Prng& prng, const consensus::MembershipDurable& recovered);

  consensus::MembershipNode& node() { return _node; }
  const consensus::MembershipNode& node() const { return _node; }
  bucket::BucketTable& table() { return _table; }
  const bucket::BucketTable& table() const { return _table; }

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
  consensus::MembershipConfig _config;
  bucket::BucketTable _table;
  consensus::MembershipNode _node;

  Tick _probe_due = 0;
  std::map<ParticipantId, Tick> _pong;            // last answer, by arrival id
  std::map<ParticipantId, Tick> _probing_since;   // first probe of the current streak
  std::map<uint32_t, Migration> _migrations;      // by bucket
  uint64_t _acks_proposed = 0;
};

}  // namespace coworker::sim
