// ClusterNode: core 0's membership side of a participant — the engine's
// MembershipHost over core 0's storage, and the peer transport.
//
// Created by core 0's main task after every core is ready, used only on
// core 0, closed before core 0's log. It carries:
//   - membership messages both ways (frames of type `membership`: an
//     envelope {from id, to id} around the membership codec's bytes);
//   - phaser messages both ways (frames of type `phaser`: {from id} around
//     the phaser codec's bytes), to and from the core hosting the bucket;
//   - governments from the table to the bucket's core, in order;
//   - the participant's life: once the membership gives us an arrival id,
//     every core creates its BucketHost, then governments are fed; a
//     refusal, a departure or a new id stops the process with the reason
//     (arriving anew with old phaser state is the recovery issue's work).
// Addresses in the membership log are "<peer>|<http>": the transport uses
// the part before '|', /v1/cluster shows both.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "bucket/membership_host.h"
#include "consensus/prng.h"
#include "reactor/sync.h"
#include "reactor/task.h"
#include "tools/coworker/connection_limit.h"
#include "tools/coworker/core.h"
#include "tools/coworker/hop.h"
#include "tools/coworker/metrics.h"
#include "tools/coworker/peer.h"

namespace coworker::server {

class Participant;

// Whether this participant may serve reads of a bucket (ClusterNode::may_read).
enum class ReadRight : uint8_t { yes, not_replica, not_leader, starting };

using Clock = std::chrono::steady_clock;

// Where a request for a bucket goes now (ClusterNode::where).
struct Destination {
  enum class Kind : uint8_t {
    here,     // the table names us leader
    peer,     // the table names another member leader: hop to `address`
    nowhere,  // no leader known, or we do not serve: park, then ask again
    // The leader is a member marked unreachable: the last survivor of the
    // bucket's government (DESIGN §2), so the bucket answers 503 at once
    // until it returns, instead of after the hop deadline.
    unreachable,
  };
  Kind kind = Kind::nowhere;
  consensus::ParticipantId leader = consensus::no_participant;
  std::string address;  // peer address, for `peer`
};

// "<peer>|<http>" → the peer part (an address without '|' is all peer).
std::string_view peer_part(std::string_view address);
std::string_view http_part(std::string_view address);

class ClusterNode final : private bucket::MembershipEffects {
 public:
  ClusterNode(Participant& participant, Core& core0);
  ~ClusterNode();
  ClusterNode(const ClusterNode&) = delete;
  ClusterNode& operator=(const ClusterNode&) = delete;

  // Listens for peers — or takes over `peers`, listening already (the
  // RecoveryBeacon's, beacon.h) — and starts the membership node
  // (bootstrap, arrival or restart). A one-line reason when it cannot.
  Result<void, std::string> start(std::unique_ptr<PeerTransport> peers);
  reactor::Task<void> close();

  void tick();
  void log_candidacy();
  void on_durable();
  // Core 0's part of a checkpoint round (Core::checkpoint_round): the
  // membership state and the connection-id block end. 0: nothing staged.
  bucket::HostStorage::Ticket checkpoint();
  // A phaser message of a bucket hosted here, for participant `to`.
  void send_phaser(consensus::ParticipantId to, std::string bytes);
  // A bucket leader's report of a silent replica.
  void report(consensus::ParticipantId silent);
  // Our copy of the bucket was marked for repair and is void: shrink us out
  // of its government (bucket/membership_host.h step 6).
  void repair(uint32_t bucket);
  // SIGTERM (DESIGN §3): propose leave{our id} (again each heartbeat until
  // the log has it); the participant exits 0 once departed, or when
  // `deadline` passes first, saying so. Not when we are not a serving
  // member, or the only active one (no one to migrate to): the caller
  // just stops.
  enum class LeaveStart { leaving, not_serving, alone };
  LeaveStart leave(Clock::time_point deadline);
  // A new connection id, unique in the cluster forever: issuer = our
  // arrival id, counter from a block made durable before its first use.
  // Refused while we do not serve or the log fails, and beyond
  // --max-connections issued within --connection-expiry (connection_limit.h).
  enum class ConnectRefusal : uint8_t { not_serving, too_many };
  reactor::Task<Result<consensus::ConnectionId, ConnectRefusal>> connect();

  consensus::ParticipantId self() const { return _host->node().id(); }
  // With `local`: a replica of the bucket's current government; without:
  // its leader, holding a read lease (DESIGN §3; the bucket's core then
  // checks that its leadership start committed).
  ReadRight may_read(uint32_t bucket, bool local);
  // ---- hops (DESIGN §4; dispatch.h drives them) ----
  // Our applied membership slot: what a hop we send carries.
  uint64_t slot() const;
  // Where a request for `bucket` goes, once our table is as new as `slot`
  // (a hop's sender's): waits for the catch-up until `deadline`.
  reactor::Task<Destination> where(uint32_t bucket, uint64_t slot, Clock::time_point deadline);
  // Until the table changes or `deadline`, whichever first (a parked
  // request asks where() again after it).
  reactor::Task<void> park(Clock::time_point deadline);
  // Sends a hop request to the leader `to` (a Destination::Kind::peer) and
  // waits for its answer until `deadline`, or until `to` departs or is
  // marked unreachable (it cannot answer any more; waiting out the deadline
  // made a failover take a hop deadline longer). Nothing when no answer
  // came: the request's outcome is unknown; the client resubmits.
  reactor::Task<std::optional<Hop>> call(const Destination& to, Hop request,
                                         Clock::time_point deadline);

  // DESIGN §3 /v1/health: "serving", "arriving", "recovering", "leaving".
  std::string_view health() const;
  // The /v1/cluster body, with the per-bucket views gathered from every core.
  std::string cluster_json(const std::vector<BucketView>& buckets) const;
  // /metrics: the membership's gauges, and the peer links' counters copied
  // into `metrics` (core 0's).
  ClusterGauges gauges() const;
  void peer_counters(CoreMetrics& metrics) const;

 private:
  void on_frame(const PeerInfo& from, FrameType type, std::string_view payload);
  void on_membership_frame(const PeerInfo& from, std::string_view payload);
  void on_phaser_frame(const PeerInfo& from, std::string_view payload);
  void on_hop_frame(const PeerInfo& from, std::string_view payload);
  reactor::Task<void> serve_hop(std::string address, Hop request);
  void expire_calls();
  void tick_leave();
  // After every call into the membership host: the pump has work, and our
  // identity may have changed.
  void after_call();
  // Whether `id` may still answer a hop: a member not marked unreachable.
  bool may_answer(consensus::ParticipantId id) const;
  reactor::Task<void> create_hosts(consensus::ParticipantId id, consensus::ParticipantId before);

  // bucket::MembershipEffects.
  void send(const std::string& address, consensus::ParticipantId from, consensus::ParticipantId to,
            consensus::MembershipMessage message) override;
  void government(uint32_t bucket, const consensus::Government& government) override;
  void prepare(uint32_t bucket, uint64_t step,
               std::vector<consensus::ParticipantId> newcomers) override;
  void release_hold(uint32_t bucket) override;
  void applied() override;
  // Decided membership changes (not acks) and leadership changes go to the
  // log at info: what an operator reads to follow a failover.
  void learned(const consensus::Decided& decided) override;

  Participant& _participant;
  Core& _core0;
  consensus::Prng _prng;
  std::unique_ptr<bucket::MembershipHost> _host;
  // SIGTERM's leave: until when, and when we proposed it last.
  std::optional<Clock::time_point> _leave_deadline;
  bool _exit_requested = false;  // we left: the participant stops (once)
  Clock::time_point _leave_proposed;
  std::unique_ptr<PeerTransport> _peers;
  consensus::ParticipantId _hosts_for = consensus::no_participant;  // hosts created for this id
  bool _governing = false;  // governments fed to the cores
  uint64_t _cluster = 0;    // told to the transport

  // Hops: our calls waiting for answers (by call id), requests parked on
  // the table, hops being served for peers. Each bounded: a request beyond
  // a bound is answered at once (unavailable / overloaded).
  struct HopCall {
    reactor::Event done;  // set by the answer; notified by deadlines and table changes
    std::optional<Hop> answer;
    Clock::time_point deadline;
  };
  static constexpr size_t hop_calls_max = 4096;
  static constexpr size_t hops_served_max = 4096;
  static constexpr size_t parked_max = 4096;
  std::map<uint64_t, HopCall*> _calls;
  uint64_t _next_call = 1;
  size_t _hops_served = 0;
  size_t _parked = 0;
  reactor::Event _table_changed;  // notified on every applied slot, and each tick while parked

  std::set<consensus::ParticipantId> _members;  // as of the last applied slot
  uint64_t _departures = 0;                     // members gone since this process started
  consensus::ParticipantId _logged_leader = consensus::no_participant;  // membership leader, as logged
  // The membership candidacies logged, of the Paxos of this id.
  consensus::ParticipantId _logged_elections_of = consensus::no_participant;
  uint64_t _logged_elections = 0;

  static constexpr uint64_t connection_block = 4096;  // ids per durable block
  uint64_t _next_connection = 0;
  uint64_t _connection_end = 0;  // ids below this end are durable to issue
  uint64_t _staged_connection_end = 0;  // the highest block end staged (checkpoint rounds)
  bool _block_pending = false;
  reactor::Event _block_written;
  ConnectionLimit _connection_limit;
};

}  // namespace coworker::server
