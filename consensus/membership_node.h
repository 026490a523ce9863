// MembershipNode: one participant's side of the membership log (DESIGN §3,
// §5) — arrival, heartbeats, read leases, departures, voter changes — as a
// pure state machine over Paxos.
//
// One per participant boot, owned by the driver of its core 0 (a server) or
// by a simulated participant; it owns the Paxos object of the participant's
// current arrival id (none while arriving), its MembershipState, and borrows
// the MembershipApplication (bucket/table.h) it feeds. Calls go in (start,
// on_message, on_tick, apply, propose, leave, report_silent, set_stuck,
// set_ready), a MembershipOutput comes out, under Paxos's driver contract
// (membership_messages.h). Time is its own tick count; no I/O, no clock.
//
// The protocol:
//   1. Arrival. A newcomer persists a new incarnation, then asks members
//      (ArriveRequest, retried with the same nonce). A member checks the
//      cluster parameters (refusing with the reason), answers at once for a
//      nonce already decided (ArriveAnswer: id + a snapshot of its applied
//      state), else proposes arrive{...}. When it applies the arrival it
//      answers. The newcomer persists its id and the snapshot, starts Paxos
//      from it (a learner; the log after the snapshot comes from Paxos), and
//      is `recovering` until it applied what the leader had decided. The
//      first participant of a cluster (bootstrap) is id 1 and proposes its
//      own arrival at slot 1.
//   2. Heartbeats and read leases. Every heartbeat_ticks a member sends
//      MemberHeartbeat{sent = its tick, boot = its Paxos boot counter} to
//      the Paxos leader. The leader acks (MemberAck{sent, boot, slot = its
//      decided slot}) only while (a) it holds its Paxos lease, (b) lease +
//      margin have passed since it began leading (the old leader's acks have
//      run out), (c) it decided every slot its phase 1 left open, (d) it is
//      not stuck, and (e) it is not withholding acks from that member (rule
//      3: by id, so whichever boot of the member heartbeats; never once it
//      proposed the member's removal). The member holds a read lease until
//      sent + lease, counted only once it applied `slot`, and (f) only from
//      an ack whose `boot` is its own: ticks start again at every boot, so an
//      ack of an earlier boot's heartbeat (delayed, duplicated) names a tick
//      this boot may have sent too, and would grant a lease the leader never
//      granted — after it proposed the departure, say.
//   3. Departures. The leader departs a member that sent no heartbeat for
//      the departure timeout, or that a bucket leader reported silent, or
//      that is leaving and holds nothing — always after withholding its acks
//      for lease + margin since the last one it sent, and until that very
//      proposal is decided (another leadership's mark decided meanwhile
//      does not end it). Silence counts from
//      when it began leading at the earliest (by then the previous leader's
//      acks have stopped; departure >= lease + margin), reports only from
//      one departure timeout after it (docs/PROTOCOL.md, "Leases and
//      departures", a deviation from DESIGN §3). Reports about a recovering
//      member count only once it has been recovering for the recovery
//      timeout, and a member whose heartbeats have said `recovering` for
//      that long is departed as if reported (a restart's log replay that
//      does not end), from one departure timeout after this leadership
//      began, as reports. The last survivor of some
//      current government is marked unreachable instead (and the state
//      machine converts a depart it applies then). An unreachable member
//      heard again after its mark — a heartbeat whose applied slot reaches
//      the mark's, so never one delayed from before it — is returned (a
//      leader hears itself). These proposals are
//      leader-only: they never outlive the leadership that judged them.
//   4. Voters. The leader proposes a reconfiguration whenever the rule's
//      voters (MembershipState, at its applied slot: the basis) differ from
//      the latest scheduled ones (Paxos schedule), at most one at a time, and
//      only while it hears from every voter it names (a configuration whose
//      majority is silent could not decide their departures, which change
//      the rule), and only once everything it proposed is decided and
//      applied (the basis is then the slot before the reconfiguration: no
//      removal comes between). It takes effect α slots later (paxos.h
//      steps 12-15).
//   5. Own departure. A member that applies its own departure (or is told it
//      is gone) retires: no read lease, no heartbeats of its own, but it
//      still votes, learns and may lead (with every duty of a leader) while
//      a configuration that counts its vote governs an undecided slot (its
//      departure precedes the reconfiguration that removes it, which its old
//      configuration must decide). Then, once a majority of the voters in
//      force hold snapshots covering what it voted on, it drops
//      its Paxos and arrives anew with a new incarnation — unless it was
//      leaving: then it is done (exited()).
//   6. Stuck. A member whose disk batch or phaser core is stuck stops
//      heartbeating, stops acking and steps down (Paxos pause), so a hung
//      leader is departed too.
//
// Safety invariant (checked by the simulator): no participant is departed
// or marked unreachable while it holds a read lease.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "consensus/membership_messages.h"
#include "consensus/membership_state.h"
#include "consensus/paxos.h"

namespace coworker::consensus {

struct MembershipTiming {
  Tick heartbeat_ticks = 5;
  Tick lease_ticks = 20;       // read lease, from the heartbeat's send tick
  Tick margin_ticks = 2;       // clock drift allowance on every lease wait
  Tick departure_ticks = 60;   // --departure-timeout-ms
  Tick recovery_ticks = 300;   // --recovery-timeout-ms
  Tick arrival_retry_ticks = 15;
  Slot snapshot_interval = 32;  // compact Paxos every this many applied slots (0: never)
};

struct MembershipConfig {
  ClusterParams params;
  std::string address;
  uint64_t data_dir = 0;          // this directory's id, if the disk has none yet
  bool bootstrap = false;         // no --join and an empty data dir
  std::vector<std::string> join;  // members' addresses to ask for arrival
  Paxos::Timing paxos_timing;
  Paxos::Limits paxos_limits;
  MembershipTiming timing;
};

class MembershipNode {
 public:
  MembershipNode(const MembershipConfig& config, Prng& prng, const MembershipDurable& recovered,
                 MembershipApplication& application);
  ~MembershipNode();

  MembershipOutput start();
  MembershipOutput on_message(ParticipantId from, ParticipantId to, const std::string& address,
                              const MembershipMessage& message);
  MembershipOutput on_tick();
  // The driver hands back every output once its records are durable (the
  // node applies its `installed` and `decided`).
  MembershipOutput apply(const MembershipOutput& released);
  // Entries the host proposes (migration acks); forwarded to the leader.
  MembershipOutput propose(const MembershipEntry& entry);
  MembershipOutput leave();
  MembershipOutput report_silent(ParticipantId replica);
  MembershipOutput set_stuck(bool stuck);
  // The host's own recovery (phaser replay) is done; default true.
  void set_ready(bool ready) { _ready = ready; }

  // ---- Queries ----
  ParticipantId id() const { return _identity.id; }
  uint64_t generation() const { return _generation; }
  Nonce nonce() const { return {_identity.data_dir, _identity.incarnation}; }
  // Copies this directory held under incarnations up to this one are void
  // for a heir's adoption (Identity::void_through).
  uint64_t void_through() const { return _identity.void_through; }
  bool arriving() const { return _identity.id == no_participant && !_exited && !_refused; }
  bool has_paxos() const { return _paxos != nullptr; }
  Paxos& paxos();
  const Paxos& paxos() const;
  const MembershipState& state() const { return _state; }
  const MembershipApplication& application() const { return _application; }
  Tick now() const { return _now; }
  bool recovering() const { return _recovering || !_ready; }
  bool stuck() const { return _stuck; }
  // Departed, still voting where a configuration counts it (rule 5).
  bool retiring() const { return _retiring; }
  // A read lease (DESIGN §3) from the leader's ack, now.
  bool holds_read_lease() const;
  Tick lease_until() const { return _lease_until; }
  // Own status in the applied state.
  bool unreachable() const;
  bool leaving() const;
  // It left gracefully and departed: the process exits.
  bool exited() const { return _exited; }
  // Refused for good (other cluster parameters), with the reason.
  const std::optional<std::string>& refused() const { return _refused; }
  bool leading() const { return _paxos != nullptr && _paxos->leading(); }
  // The leader acks heartbeats now (rule 2 a-d).
  bool grants_leases() const;
  // The leader's last heartbeat ack from a member (0: none this leadership).
  Tick last_acked(ParticipantId member) const {
    const auto it = _peers.find(member);
    return it == _peers.end() ? 0 : it->second.last_acked;
  }
  uint64_t arrivals_answered() const { return _arrivals_answered; }

  void check_invariants() const;

 private:
  // What the leader tracks per member (rule 3).
  struct Peer {
    Tick first_seen = 0;  // when this leadership first saw it a member
    Tick last_heard = 0;
    Tick last_acked = 0;
    Tick recovering_since = 0;  // 0: not recovering
    Tick reported_at = 0;
    bool withhold = false;
    // This leadership's Depart or Unreachable of it, until that very
    // proposal is decided: another leadership's removal decided meanwhile
    // (an Unreachable re-proposed by phase 1, say) does not end the
    // withholding, ours may still depart it (seed 671497433 of phaser-churn).
    std::optional<ProposalId> removal;
    bool return_proposed = false;
    // A marked member returns only once heard after its mark: with a
    // heartbeat whose applied slot reaches the mark's (a heartbeat sent
    // before it, delivered late, never returns a lost participant: seed
    // 403445063 of member-lost). marked_at: the mark's slot as this
    // leadership knows it (at least its first look at the member).
    Slot marked_at = 0;
    Slot heard_applied = 0;  // the highest applied slot its heartbeats said
  };

  // membership_node.cc: identity, arrival, apply, member side.
  void start_paxos(ParticipantId id, const Durable& durable, MembershipOutput& out);
  void install(const Snapshot& snapshot);
  void tick_arrival(MembershipOutput& out);
  void remember_members(const MembershipState& state);
  void on_arrive_request(ParticipantId from, const std::string& address, const ArriveRequest& request,
                         MembershipOutput& out);
  void on_arrive_answer(const ArriveAnswer& answer, MembershipOutput& out);
  void answer_arrival(const Nonce& nonce, const std::string& address, MembershipOutput& out);
  void react(Slot slot, const Effect& effect, MembershipOutput& out);
  void settle_removal(const ProposalId& decided);
  void after_apply(MembershipOutput& out);
  void retire(MembershipOutput& out);
  bool retired() const;
  void note_votes();
  Slot votes_until() const;
  void depart_self(MembershipOutput& out);
  void send_heartbeat(MembershipOutput& out);
  void on_member_ack(ParticipantId from, const MemberAck& ack, MembershipOutput& out);
  void promote_acks();
  void ask_anyone(const MemberHeartbeat& heartbeat, MembershipOutput& out);
  Snapshot snapshot_now() const;
  void merge(Output paxos_output, MembershipOutput& out);
  void maybe_bootstrap(MembershipOutput& out);
  void start_arrival(MembershipOutput& out, bool bump, uint64_t at_least);
  void propose_entry(const MembershipEntry& entry, Paxos::Forwarding forwarding,
                     MembershipOutput& out);
  void send(ParticipantId to, MembershipMessage message, MembershipOutput& out);
  void persist_identity(Identity identity, MembershipOutput& out);

  // membership_leader.cc: rule 2 (acks), 3 (departures), 4 (voters).
  void note_leadership();
  void on_member_heartbeat(ParticipantId from, const MemberHeartbeat& heartbeat,
                           MembershipOutput& out);
  void on_silent_report(ParticipantId replica);
  void tick_leader(MembershipOutput& out);
  void consider_removal(ParticipantId id, Peer& peer, MembershipOutput& out);
  void maybe_reconfigure(MembershipOutput& out);
  Tick grace_end() const { return _leader_since + _config.timing.departure_ticks; }
  MembershipOutput finish(MembershipOutput out);

  const MembershipConfig& _config;
  Prng& _prng;
  MembershipApplication& _application;
  Identity _identity;
  Durable _boot_paxos;  // the recovered acceptor state, until start()
  std::unique_ptr<Paxos> _paxos;
  uint64_t _generation = 0;  // bumped with every new Paxos
  MembershipState _state;
  Tick _now = 0;
  bool _started = false;
  bool _exited = false;
  std::optional<std::string> _refused;
  std::map<ParticipantId, std::string> _addresses;  // seen on incoming messages

  // Arrival (newcomer).
  Tick _arrival_due = 0;
  // The other members' addresses as we last knew them (at our departure, or
  // in the snapshot we booted from): an arrival anew asks them as well as
  // `join`, which a participant that bootstrapped does not have.
  std::vector<std::string> _remembered;
  uint64_t _remembered_cluster = 0;  // the cluster id we knew (0: none)
  // Arrival (member): requests whose arrival this member proposed.
  std::map<Nonce, std::string> _requests;
  uint64_t _arrivals_answered = 0;
  bool _bootstrap_proposed = false;

  // Member side.
  bool _recovering = false;
  bool _ready = true;
  bool _stuck = false;
  Tick _heartbeat_due = 0;
  Slot _caught_up_at = 0;  // the first ack's slot; recovering until applied
  bool _caught_up_known = false;
  Tick _lease_until = 0;
  std::map<Slot, Tick> _pending_acks;  // ack slot -> best lease end, not yet applied
  bool _left = false;                  // asked to leave
  bool _retiring = false;              // departed, still an acceptor (rule 5)
  std::map<ParticipantId, Slot> _confirmed;  // retiring: voters' snapshot slots
  Slot _vote_until = 0;  // the last slot a configuration counting us governs
  Slot _retire_after = 0;              // retiring: apply this far before leaving

  // Leader side.
  bool _leading = false;
  Tick _leader_since = 0;
  std::map<ParticipantId, Peer> _peers;
  bool _reconfiguration_pending = false;
};

// Repair at boot (DESIGN §4): the identity of a participant that gives up
// its id because part of its durable state is damaged — no id, no arrival
// under way (start() then persists a new incarnation and arrives anew, a
// newcomer the buckets grow back to), and the members its membership
// snapshot knew remembered, asked besides --join. `records_damaged`: the
// membership records themselves were damaged, so an identity record with a
// higher incarnation may be among those lost, and reusing its nonce would
// be answered with that arrival's id: the incarnation jumps by 2^32 (more
// arrivals than one log could hold).
Identity abandoned_identity(const MembershipDurable& durable, bool records_damaged);

}  // namespace coworker::consensus
