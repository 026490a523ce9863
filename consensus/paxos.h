// Paxos: Multi-Paxos with a stable leader over a fixed voter set, as a pure
// state machine. The membership log (DESIGN §5) runs on it.
//
// One Paxos object per participant, owned by the driver of that participant's
// membership state (core 0 of a server; a simulated participant in tests/sim)
// for the life of one boot. It never does I/O, reads no clock and draws
// randomness only from the Prng passed in: calls go in (start, on_message,
// on_tick, propose, compact), an Output comes out.
//
// Protocol. V voters (1, 3 or 5) accept; every member (voters and learners)
// learns. A majority is V/2 + 1 voters.
//   1. Election. A voter that heard no leader for election_timeout (+ jitter
//      from the Prng) picks ballot b = (round above everything it has seen,
//      self) and sends Prepare(b, from = its decided prefix + 1) to the
//      voters. A Prepare covers every slot >= from: phase 1 runs once per
//      leadership, not once per slot.
//   2. Promised. A voter promises b when b >= its promise and no lease binds
//      it (it heard another leader less than lease_ticks ago, or it booted
//      less than lease_ticks ago). Every leader it followed or acked a
//      heartbeat of binds it, not only the one it follows now: a higher
//      ballot it switched to may not have covered the configuration whose
//      lease the other counts (step 14). It PERSISTS the promise, then answers
//      Promised with every (slot, ballot, entry) it accepted at or above
//      `from` and its compaction point; otherwise it answers Reject. The
//      candidate's own acceptor promises last, once the others make a
//      majority: a candidate that cannot win never raises its own promise, so
//      a partitioned voter cannot disturb a healthy leader when it returns.
//   3. Catch-up before leading. If a promiser compacted past the candidate's
//      decided prefix, the candidate first learns up to that point (CatchUp,
//      answered by a snapshot): it must not re-propose compacted slots.
//   4. Leading. For every slot above its decided prefix up to the highest one
//      reported, the leader re-proposes the entry of the highest ballot
//      reported, else a noop; then new proposals. Phase 2 sends
//      Accept(b, commit point, [(slot, entry)...]) batched to every member,
//      never more than window_slots_max slots past the commit point.
//   5. Accept. A voter accepts when b >= its promise: it PERSISTS the
//      promise and the entries, then answers Accepted(slots). A learner keeps
//      the entries in memory only. Anything below the promise gets Reject.
//   6. Decide. When a majority of voters accepted (slot, b) the leader
//      decides the slot; decisions come out in slot order. The commit point
//      travels in every Accept and Heartbeat; a member decides slot s when it
//      holds the entry that leader b proposed for s and b's commit point
//      covers s (sound by invariant 5). Otherwise it catches up (step 8).
//   7. Lease. Every heartbeat_ticks the leader sends Heartbeat(b, sent,
//      commit) to every member; acks echo `sent`. The leader holds its lease
//      until (the latest `sent` acked by a majority) + lease_ticks -
//      lease_margin_ticks; since a voter binds itself from receipt for
//      lease_ticks of its own clock, no other ballot completes phase 1 before
//      that (invariant 6) while the voter's clock runs at most about
//      (lease - 1) / (lease - margin - 1) times as fast as the leader's (the
//      margin: docs/PROTOCOL.md, "What a tick is"). A leader without a
//      majority of acks for leader_timeout steps down.
//   8. Learning. A member whose known commit point is past a gap sends
//      CatchUp(from) to the leader (or to the promiser, step 3); Learn
//      answers with decided entries, preceded by a snapshot when the sender
//      compacted past `from`.
//   9. Proposals. propose() on any member keeps the entry (id = proposer,
//      boot counter, sequence) until it is decided, and forwards it to the
//      leader on every leadership change and every forward_ticks. The leader
//      drops ids it has queued or in flight, and answers Forwarded for ids in
//      its retained log (a proposer that learned them inside a snapshot
//      cannot see them). Delivery is at least once: the embedding layer makes
//      its entries idempotent.
//  10. Compaction. The application hands compact(snapshot at s <= decided);
//      it is persisted with the accepted entries <= s dropped; decided entries
//      stay in memory for retain_slots below s to serve small lags.
//  11. Recovery. A participant restarts from its Durable (promise, accepted
//      entries, snapshot, boot counter): it keeps its promises, bumps the
//      boot counter (persisted before any proposal) and binds itself to the
//      lease grace before promising anyone.
//
//   proposer       leader (b)                 voters               learners
//      |--Forward---->|                          |                      |
//      |<-Forwarded---|  (ids already decided)   |                      |
//      |              |--Prepare(b, from)------->|   once per leadership
//      |              |<-Promised(b, accepted)----|   persist promise first
//      |              |--Accept(b, commit, [s])->|--------------------->|
//      |              |<-Accepted(b, [s])--------|   persist accept first
//      |              |--Heartbeat(b, sent, commit)-------------------->|
//      |              |<-HeartbeatAck(sent, decided)--------------------|
//      |              |<-CatchUp(from)------------------------(lagging)-|
//      |              |--Learn(snapshot?, entries)--------------------->|
//
// Safety invariants (asserted where they can be checked locally; the
// simulator checks the cross-participant ones after every step):
//   1. A voter's promise never decreases, survives crashes, and it accepts
//      only at ballots >= its promise.
//   2. A leader proposes at most one entry per slot in its ballot.
//   3. Agreement: no two members decide different entries for one slot (the
//      leader re-proposes the highest-ballot value reported by a majority).
//   4. Decided slots form a prefix: decisions come out contiguous and in
//      order; the in-memory log holds exactly (log start, decided_through].
//   5. While leading, a node decides only by its own majority at its own
//      ballot (it ignores Learn), so its commit point covers only entries it
//      proposed under that ballot above its starting prefix.
//   6. Lease: at most one leader holds a lease at any tick, and while it
//      does no other leader can get a slot past its decided prefix chosen
//      (clock rates within the bound lease_margin_ticks covers, step 7). A
//      higher ballot may still lead an earlier configuration whose slots
//      are all decided: it decides nothing the lease protects.
//   7. Window: a leader never proposes beyond decided_through +
//      window_slots_max.
//
// Configuration changes. The voter set is data: a Schedule (first slot ->
// voters) that reconfiguration entries extend (paxos_types.h Entry). A
// reconfiguration decided at slot s governs slots >= s + α, α =
// window_slots_max (the same on every participant of a cluster).
//  12. Quorums per slot. Slot t is decided by a majority of the voters of t.
//      By invariant 7 a leader proposes t <= decided + α, so the voters of
//      every slot it proposes are fixed by its decided prefix: no slot is ever
//      decided by two configurations.
//  13. Phase 1 across configurations. A candidate needs promises from a
//      majority of every configuration governing slots >= from that it knows
//      of: the decided ones, and those scheduled by the highest-ballot
//      reconfigurations its promisers report (applied in slot order, compare
//      and swap as at decision); it prepares the voters of each as they come
//      to light. A leader that reaches a configuration whose majority has not
//      promised its ballot prepares those voters before proposing there (the
//      reports then decide what it re-proposes in the new range).
//  14. Leases across configurations. The leader's lease needs, from every
//      configuration governing slots > its decided prefix that it knows of
//      (decided, or in its own window), majority acks and a majority's
//      promises of its ballot; it is recomputed, so a configuration that
//      comes to count ends it until both hold, and the leader prepares such
//      a configuration at once (not only when its slots come, step 13). A
//      higher rival must cover one of them by step 13, and their voters
//      refuse it while the lease runs (step 2); a lower one is refused by the
//      promisers. Ballots order leaders only within a configuration: a later
//      one may be led by a lower ballot that never met ours (its voters
//      restarted, or never heard us), and without the promises that ballot
//      could decide there while our acks made a lease (seed 108536 of
//      member-churn, staged in tests/consensus/paxos_test.cc).
//  15. Handing over. A leader that is not a voter of its next slot decides
//      what it has in flight and steps down; while a scheduled change lies
//      ahead and nothing is queued, it fills the slots up to it with noops,
//      so a change takes effect without waiting for traffic.
// Every member answers Prepare (a promise of a non-voter is harmless); a
// member persists and acks an Accept for slot t when it is a voter of t, or
// when t lies beyond what its decided prefix tells (it may be one). Learners
// (members that are not voters) come from set_members(); messages from
// others are heard too (a participant that lags may not know the sender),
// and who was heard lately is asked for decided entries while nobody leads.
#pragma once

#include <cstddef>
#include <deque>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "consensus/paxos_types.h"
#include "consensus/prng.h"
#include "consensus/timeout.h"

namespace coworker::consensus {

// The initial voters (governing from slot 1) and the learners. Both sorted,
// disjoint; voters.size() in {1,3,5}.
struct Configuration {
  std::vector<ParticipantId> voters;
  std::vector<ParticipantId> learners;

  bool is_voter(ParticipantId id) const;
  bool is_member(ParticipantId id) const;
  size_t majority() const { return voters.size() / 2 + 1; }
  std::vector<ParticipantId> members() const;  // sorted
  void check() const;
};

// Valid voter sets: sorted, unique, no 0, odd size up to voters_max.
constexpr size_t voters_max = 7;
bool valid_voters(const std::vector<ParticipantId>& voters);
size_t majority_of(const std::vector<ParticipantId>& voters);
bool contains(const std::vector<ParticipantId>& sorted, ParticipantId id);

class Paxos {
 public:
  struct Timing {
    Tick heartbeat_ticks = 5;
    Tick lease_ticks = 20;  // a follower refuses other ballots this long after contact
    // The leader's own lease is this much shorter: clock rates differ (step 7).
    Tick lease_margin_ticks = 0;
    Tick election_timeout_ticks = 40;
    Tick election_jitter_ticks = 40;  // election timeout + uniform [0, jitter]
    Tick leader_timeout_ticks = 40;   // step down without majority acks this long
    Tick retry_ticks = 10;            // resend Prepare, Accept, CatchUp
    Tick forward_ticks = 25;          // resend pending proposals to the leader
    // A new leader proposes the entries it recovered in phase 1 only this
    // long after it began leading. The membership sets lease + margin: a
    // departure the previous leader proposed must not be decided while a
    // read lease that leader granted may still run (DESIGN §3, "a new
    // membership leader waits the old lease out").
    Tick recovered_hold_ticks = 0;
  };
  struct Limits {
    Slot window_slots_max = 64;        // α: slots in flight past the commit point
    size_t batch_entries_max = 16;     // entries per Accept
    size_t learn_entries_max = 64;     // entries per Learn
    size_t forward_entries_max = 256;  // entries per Forward
    size_t proposals_max = 1024;       // own undecided proposals
    size_t queue_max = 4096;           // leader's queue of entries not yet in a slot
    Slot retain_slots = 16;            // decided entries kept below a snapshot
  };
  enum class Status { follower, candidate, leader };

  // What the leader knows of each member (the membership issue departs
  // members by it).
  struct PeerProgress {
    Slot decided_through = 0;
    Tick last_ack_tick = 0;  // when the last heartbeat ack arrived
    Tick acked_sent = 0;     // `sent` of the latest heartbeat acked
    bool acked = false;      // any ack at all in this leadership
  };
  struct Stats {
    uint64_t elections_started = 0;
    uint64_t elections_won = 0;
    uint64_t step_downs = 0;
    uint64_t snapshots_installed = 0;
    uint64_t forwards_dropped = 0;  // duplicate ids the leader ignored
    uint64_t reconfigurations = 0;  // decided and scheduled
    uint64_t reconfigurations_void = 0;
    uint64_t noops_filled = 0;  // step 15
    uint64_t hand_overs = 0;    // step 15
  };
  struct Proposed {
    std::optional<ProposalId> id;  // none: not started, or too many pending
    Output output;
  };

  // `configuration.voters` govern from slot 1 unless `recovered` holds a
  // snapshot (whose schedule then applies); configuration.members() is the
  // first member list (set_members replaces it).
  Paxos(ParticipantId self, Configuration configuration, Timing timing, Limits limits, Prng& prng,
        const Durable& recovered);

  // Bumps and persists the boot counter; the first call after construction.
  // The driver makes this output durable before it calls propose(): proposal
  // ids carry the boot counter and must never repeat.
  Output start();
  Output on_message(ParticipantId from, const Message& message);
  Output on_tick();
  // Forwarding::no: a leader-only proposal (none when not leading). It is
  // never forwarded, and withdrawn if the leadership ends before it reaches
  // a slot (take_withdrawn); one already in a slot may still be decided by a
  // later leader's phase 1. The membership layer proposes what must not
  // outlive the leadership that judged it (departures) this way.
  enum class Forwarding : bool { no, yes };
  Proposed propose(std::string value, Forwarding forwarding = Forwarding::yes);
  // A reconfiguration (step 12): `voters` replace `replaces`, which should be
  // latest_voters() as the proposer sees it.
  Proposed propose_reconfiguration(std::string value, std::vector<ParticipantId> replaces,
                                   std::vector<ParticipantId> voters,
                                   Forwarding forwarding = Forwarding::yes);
  // Ids of leader-only proposals withdrawn since the last call.
  std::vector<ProposalId> take_withdrawn() { return std::exchange(_withdrawn, {}); }
  // Leading, with every slot phase 1 found open decided (nothing a previous
  // leadership left in flight can still be decided by us later).
  bool recovered_all() const { return leading() && _decided_through >= _recovered_through; }
  // The application's state at snapshot.slot <= decided_through(). Paxos
  // fills in snapshot.schedule.
  Output compact(Snapshot snapshot);
  // The members besides the scheduled voters (sorted): who learns. Takes
  // effect at once; only liveness depends on it.
  void set_members(std::vector<ParticipantId> members);
  // Steps down if leading, and refuses to campaign while `paused` (a member
  // whose disk or cores are stuck must not lead).
  void pause(bool paused);

  ParticipantId self() const { return _self; }
  // This boot's counter (after start(); durable before any of its messages).
  uint64_t boot() const { return _durable.boots; }
  Status status() const { return _status; }
  bool leading() const { return _status == Status::leader; }
  ParticipantId leader() const;  // the leader this member follows, or no_participant
  Ballot ballot() const { return _ballot; }
  Ballot promised() const { return _durable.promised; }
  Slot decided_through() const { return _decided_through; }
  Slot compacted_through() const { return _durable.snapshot.slot; }
  const Snapshot& snapshot() const { return _durable.snapshot; }
  Tick now() const { return _now; }
  bool holds_lease() const { return leading() && _now < _lease_expiry; }
  Tick lease_expiry() const { return leading() ? _lease_expiry : 0; }
  const PeerProgress* peer(ParticipantId id) const;
  size_t pending_proposals() const { return _own.size(); }
  std::vector<ProposalId> pending_ids() const;
  const Stats& stats() const { return _stats; }
  Slot alpha() const { return _limits.window_slots_max; }
  // The decided schedule (pruned below the compaction point) and views of it.
  const Schedule& schedule() const { return _schedule; }
  const std::vector<ParticipantId>& voters_for(Slot slot) const;
  const std::vector<ParticipantId>& latest_voters() const;
  // The schedule as of slot `at` (compacted_through() <= at <= decided).
  Schedule schedule_at(Slot at) const;
  const std::vector<ParticipantId>& members() const { return _members; }
  bool is_member(ParticipantId id) const { return contains(_members, id); }
  // A voter of some configuration governing a slot past the decided prefix.
  bool votes() const { return voter_anywhere(); }
  // Someone the application heard from (outside Paxos messages): asked for
  // decided entries too while nobody leads.
  void hear_of(ParticipantId id) {
    if (id != _self && id != no_participant) _contacts[id] = _now;
  }
  bool leaderless() const;  // no leader heard for an election timeout
  // The first slot of the configuration governing `slot`.
  Slot configuration_start(Slot slot) const;
  // Voter sets, as pointers valid until this Paxos changes.
  using Configurations = std::vector<const std::vector<ParticipantId>*>;
  // Step 14: the configurations the leader's lease counts (every one
  // governing a slot past its decided prefix, its own window included).
  Configurations lease_configurations() const;
  // Leading, and a majority of `voters` promised this ballot (step 13): the
  // only configurations this leadership can decide a slot of.
  bool covers(const std::vector<ParticipantId>& voters) const {
    return leading() && promised_majority(voters, false);
  }

  void check_invariants() const;

 private:
  struct Instance {
    Entry entry;
    std::vector<ParticipantId> accepted;  // voters of the slot that accepted at _ballot
    bool chosen = false;
    Tick sent = 0;
  };

  // paxos.cc: dispatch, acceptor, learner.
  void on_prepare(ParticipantId from, const Prepare& prepare, Output& out);
  void on_accept(ParticipantId from, const Accept& accept, Output& out);
  void on_heartbeat(ParticipantId from, const Heartbeat& heartbeat, Output& out);
  void on_catch_up(ParticipantId from, const CatchUp& catch_up, Output& out);
  void on_learn(ParticipantId from, const Learn& learn, Output& out);
  bool ignore_from_leader(ParticipantId from, const Ballot& ballot) const;
  bool lease_binds(const Ballot& ballot) const;
  void bind_to(ParticipantId leader);  // step 2: its lease binds us from now
  void observe_leader(const Ballot& ballot, Output& out);
  void follow_commit(const Ballot& ballot, Slot commit, Output& out);
  void decide(Slot slot, Entry entry, std::vector<ParticipantId> quorum, Output& out);
  void install(const Snapshot& snapshot, Output& out);
  void request_catch_up(ParticipantId target, Output& out);
  void persist(PersistRecord record, Output& out);
  void send(ParticipantId to, Message message, Output& out);
  void tick_learner(Output& out);
  void probe(Output& out);
  Tick contacts_ticks() const { return 10 * _timing.election_timeout_ticks; }
  bool ignore_lower_leader(const Ballot& ballot) const;

  // paxos_schedule.cc: the configuration schedule (steps 12-15).
  void schedule_decided(Slot slot, const Entry& entry);
  void prune_schedule();
  void rebuild_members();
  void refresh_role();
  bool electable() const;
  bool voter_anywhere() const;
  bool voter_from(Slot slot) const;  // a voter of some configuration governing >= slot
  bool accepts_slot(Slot slot) const;
  // Voter sets governing slots >= from (step 13, 14).
  // `pending(consider)` calls consider(slot, entry) for tentative entries
  // in slot order (defined and used in paxos_schedule.cc only).
  template <class Pending>
  void configurations_from(Slot from, const Pending& pending, Configurations& out) const;
  Configurations phase1_configurations(const std::map<Slot, AcceptedEntry>& best) const;
  std::map<Slot, AcceptedEntry> best_reported(Slot from) const;
  bool promised_majority(const std::vector<ParticipantId>& voters, bool with_self) const;

  // paxos_leader.cc: proposer, candidate, leader.
  void on_promise(ParticipantId from, const Promised& promise, Output& out);
  void on_reject(ParticipantId from, const Reject& reject, Output& out);
  void on_accepted(ParticipantId from, const Accepted& accepted, Output& out);
  void on_heartbeat_ack(ParticipantId from, const HeartbeatAck& ack, Output& out);
  void on_forward(ParticipantId from, const Forward& forward, Output& out);
  void on_forwarded(ParticipantId from, const Forwarded& forwarded, Output& out);
  Proposed propose_entry(Entry entry, Forwarding forwarding);
  void start_election(Output& out);
  void send_prepares(const Configurations& configurations, Output& out);
  void promise_self(Output& out);
  void try_finish_phase1(Output& out);
  void become_leader(Output& out);
  bool cover(Slot slot, Output& out);
  void recover_from(Slot from);
  void step_down();
  void enqueue(const Entry& entry);
  void flush_queue(Output& out);
  void send_heartbeats(Output& out);
  void resend_accepts(Output& out);
  void advance_chosen(Output& out);
  void update_lease();
  void forward_own(Output& out);
  void tick_candidate(Output& out);
  void tick_leader(Output& out);
  void restart_election_timeout();
  bool knows_decided(const ProposalId& id) const;

  const ParticipantId _self;
  const Timing _timing;
  const Limits _limits;
  Prng& _prng;

  Schedule _schedule;                    // decided configurations
  std::vector<ParticipantId> _learners;  // from set_members, sorted
  std::vector<ParticipantId> _members;   // _learners ∪ every scheduled voter, sorted
  bool _paused = false;

  Durable _durable;  // mirror of the disk image: changed only by persist()
  bool _started = false;
  Tick _now = 0;
  Status _status = Status::follower;
  Stats _stats;

  // The leader this member follows (self while leading).
  Ballot _leader_ballot;
  Tick _leader_contact = 0;  // last tick we heard from (or, leading, sent as) it
  bool _leader_heard = false;
  // Every leader whose lease may bind us (step 2): when we last followed or
  // acked it (or, leading, sent as it). Entries older than a lease go.
  std::map<ParticipantId, Tick> _bound;
  Slot _commit_seen = 0;  // highest commit point heard from the followed leader

  // Learner.
  Slot _decided_through = 0;
  std::map<Slot, Entry> _log;               // (log start, decided_through]
  std::map<Slot, AcceptedEntry> _proposed;  // undecided entries heard in Accepts
  std::map<ProposalId, Slot> _decided_ids;  // ids of _log, for dedup
  ParticipantId _catch_up_target = no_participant;
  size_t _probe = 0;  // the member asked last while leaderless
  std::map<ParticipantId, Tick> _contacts;  // who we heard from, and when

  // Proposer.
  uint64_t _next_sequence = 0;
  std::map<uint64_t, Entry> _own;  // by sequence: undecided proposals of this boot
  std::set<uint64_t> _leader_only;  // sequences in _own proposed with Forwarding::no
  std::vector<ProposalId> _withdrawn;

  // Candidate and leader.
  Ballot _ballot;
  uint64_t _highest_round = 0;
  Slot _prepare_from = 0;                      // `from` of this ballot's Prepares
  std::map<ParticipantId, Promised> _promises;  // kept while leading (step 13)
  std::set<ParticipantId> _prepared;            // asked since the last retry
  bool _phase1_done = false;
  std::set<Slot> _covered;  // schedule keys whose majority promised _ballot
  std::map<Slot, Instance> _instances;  // slots decided_through+1 .. _next_slot-1
  std::deque<Entry> _queue;
  std::set<ProposalId> _queued_ids;  // in _queue, _instances or _recovered
  std::map<Slot, Entry> _recovered;  // from phase 1, above decided_through
  Slot _recovered_through = 0;
  Slot _next_slot = 0;
  std::map<ParticipantId, PeerProgress> _peers;
  Tick _lease_expiry = 0;
  Tick _leading_since = 0;  // when become_leader() ran (recovered_hold_ticks)
  Tick _majority_ack = 0;  // the majority-th latest ack arrival among voters

  Timeout _election_timeout;
  Timeout _heartbeat_timeout;
  Timeout _retry_timeout;
  Timeout _catch_up_timeout;
  Timeout _forward_timeout;
};

}  // namespace coworker::consensus
