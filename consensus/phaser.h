// Phaser: the replication state machine of one bucket on one participant.
//
// Pure: messages, disk notifications and ticks go in, a PhaserOutput comes
// out (persist, send, reply, report). It never does I/O, reads a clock or
// draws random numbers. One Phaser per bucket replica, owned by the bucket
// host of the core the bucket is assigned to (or by a simulated participant).
//
// The protocol (DESIGN §4), leader L holding promise P, government G
// (G[0] = L; the current government, given by the membership log):
//
//    client     L                       R ∈ G∖{L}
//      │ append  │                         │
//      │───────▶ │ 1. dedup, queue          │
//      │         │ 2. write n ─────────────▶│ 3. P < promise ⇒ nack
//      │         │    persist own register  │    commit n−1 (carried) if it is
//      │         │                          │    the register; register := n;
//      │         │ ◀───────────── ack n ────│    persist; ack when durable
//      │         │ 4. own durable ∧ acks of all G∖{L}
//      │ ◀────── │    ⇒ commit n, answer, next write carries commit n;
//      │         │    idle ⇒ trailing commit notice (acked, resent)
//
//   1. Dedup (DedupTable + the pending set): a series already queued or in
//      flight waits for that message's outcome; one in the last committed
//      window is a duplicate; any other not after the highest accepted is
//      superseded; the rest is new and queued.
//   2. One write outstanding per bucket. A write takes everything queued up
//      to write_bytes_max / write_messages_max, but always its first message.
//      Its positions start at the leader's commit end. The leader persists
//      its own register and sends the write to G∖{L} at the same time.
//   3. A replica rejects a lower promise. A higher promise replaces its
//      register. Positions it already committed are acked without appending
//      when the checksum matches the write it committed there (below its
//      recent history: acked without comparing); a mismatch, or a gap it
//      cannot fill, marks the bucket for repair. A write at its commit end
//      becomes its register, acked once durable — and only if still its
//      register then; and only if it stands on the replica's newest
//      committed write with entries (Write::prior is that write's checksum;
//      another marks the bucket for repair). So checksums chain: two copies
//      with one checksum at one position agree on every position below.
//      Marked for repair, the copy is void from then on (step 9g): shrunk
//      out and grown back, never served.
//   4. Commit needs the leader's own copy durable and an ack from every other
//      member of the current government; a member that departs is dropped
//      from the count and the write is resent to the rest. A government a
//      removal left with one member (Government::heir set) commits nothing
//      until an ack confirms it (a bump, or a growth): until then the
//      removed member's copy holds every committed position, and may be
//      adopted if ours cannot confirm (bucket/membership_host.h step 7).
//   5. Leadership start (boot, restart, usurp): re-propose the register under
//      the new promise with the same positions (or, without a register, an
//      empty write carrying the commit of the last position), persisting it
//      as our own copy — which makes the promise durable — and sending it
//      once durable (a replica the new promise reaches drops its register,
//      step 3: a promise a crash could still lose must reach none);
//      commit after our copy is durable and all acks are in; only then write
//      client messages (they may be queued meanwhile: the register's entries
//      are already in the dedup state, so dedup decisions are complete). The
//      host makes the participant's counter durable before the start, so the
//      promise is never reused even if a crash loses the re-proposal.
//   6. A nack with a higher promise, or a government led by another, ends the
//      leadership (an abdication ends this way once the government naming
//      the new leader is confirmed). What waits is handed back, never
//      dropped: each queued message, and each in flight that has a
//      connection, is answered Outcome::handed_back with the message itself
//      (Reply::handed_back), which the server takes to the next leader as a
//      resubmission (DESIGN §4). That is safe by the dedup rule: the next
//      leader either re-proposes the write in flight (the message is pending
//      there and gets that write's outcome), holds it committed (duplicate),
//      or never had it (the old write can no longer commit: new), exactly
//      as for a client's resubmission. An in-flight message without a
//      connection has no dedup, so a resubmission could log it twice: it is
//      answered 503 (unknown outcome), as before.
//   7. Ticks: a write or trailing commit not acked within resend_ticks is
//      resent (the transport never retries); a member silent for
//      report_ticks is reported to the membership leader. Ticks carry the
//      host's clock, which the leader stamps on each write it makes (never
//      earlier than the newest committed write's time) with the connection
//      expiry the write applies once committed (dedup.h): every replica
//      expires by the log, never by its own clock.
//   8. (Retired: the hold of an empty bucket's growth. Growth is step 9;
//      the host's boot hold, bucket/host.h, keeps a leadership from
//      starting instead.)
//   9. Growth (acclimation and joint acks; the membership host asks for it
//      with grow(step, newcomers) once the table's next step of a bucket we
//      lead adds members, and proposes the migration ack once
//      growth_ready(step)):
//        a. The leader probes each newcomer (an empty Catchup); it answers
//           CatchupAck{end}: it holds every committed position before end.
//        b. Behind by more than one write: the leader asks its host to
//           fetch committed writes from `end` (Fetch, about chunk_bytes,
//           one fetch and one Catchup in flight per newcomer: that is the
//           flow control) and sends them as a Catchup (an answer read
//           from an end the newcomer has acked past since, its ack having
//           crossed the read, is dropped and read again from that end:
//           what it holds is never streamed again). The newcomer takes
//           each whole write at its commit end as committed (a register
//           record and a commit record, as if it had been in the
//           government), skips what it holds, stops at a gap, and acks
//           its new end once the records are durable.
//           Where the leader's log no longer holds the writes from the
//           newcomer's end (retention: the host answers the Fetch with
//           on_fetch_retained), it sends its committed state instead, a
//           CatchupSnapshot as of its commit end; the newcomer persists it
//           as its checkpoint (CheckpointRecord: commit end, last mark,
//           dedup table; its register dropped, its promise raised to the
//           leader's: taking the state is taking the writes it folds, and a
//           deposed leader's write below that end must be refused, not
//           compared with state it holds no writes of), holds no
//           entry below it, and acks that end once durable. Safe: the
//           snapshot is of committed positions only, the newcomer acks
//           nothing of a write through it, and it is not yet a member.
//        c. Within one write (end ≥ the first position of the newest
//           committed write): the newcomer joins. The leader sends it that
//           write (kept in memory) as a Catchup, then the write in flight;
//           from now on every write and trailing commit goes to it and
//           every commit needs its ack too (joint acks of old ∪ new). A
//           newcomer acks a write only at its commit end, so an ack means
//           it holds every position before the write.
//        d. Ready once every newcomer joined and holds every committed
//           position (its acked end ≥ commit end): the membership host may
//           propose the ack; commits stay joint until the government moves
//           past the step (the ack decided, or voided by another) or the
//           host ends the growth (a named participant is gone for good:
//           the ack can never be decided). Losing the leadership ends it.
//        e. A newcomer ignores gaps instead of asking for repair: the
//           leader resends. A newcomer is a replica outside its own view of
//           the government, or one the writing leader is acclimating (it
//           took a Catchup under that promise): a returning member's view
//           may still list it while the leader grows it back.
//        f. An offered copy is verified before it counts (DESIGN §5, a
//           departed participant arriving anew with its old copies). A
//           phaser that boots holding positions has not compared them with
//           a leader's in this life: a participant arriving anew keeps its
//           copy under a new id, and a restart forgets what was compared.
//           Until it has, it takes no write from a Catchup and its
//           CatchupAcks are offers (end, and `last_filled`: its newest
//           write with entries), never holdings; the leader believes
//           holdings only (and ignores an offer below what the newcomer
//           told it held in this growth: an old packet, for a restarted
//           copy offers at least that). Then:
//           - an offer at or below the leader's commit end: the leader
//             fetches from the offer's last position, so the Catchup's
//             first write holds it; the newcomer compares that write with
//             its own newest (same end, number and checksum: verified,
//             the checksums chain, so the whole copy is the log's; it goes
//             on as in b; another, or a write across its end: its copy is
//             wrong). A snapshot (the leader's log retired that position)
//             verifies by the same comparison at the same end;
//           - an offer above the leader's commit end holds positions no
//             leader committed (a serving leader holds every position
//             committed under a promise not above its own): the leader
//             answers with a Catchup naming the offer to discard, followed
//             only while the newcomer still offers exactly that and the
//             Catchup's promise is not below its own.
//           A wrong copy is reset (ResetRecord: nothing held, the promise
//           kept) and grown from position 0; only wrong copies are reset,
//           never one a leader may have believed (a crash may keep the
//           reset alone): a snapshot above the copy's end replaces it in
//           its one record. A newcomer raises its durable promise to a
//           Catchup's before acking it (a duplicate's ack waits for that
//           record too), so no copy a leader
//           believed is ever dropped: a holding acked under promise P was
//           compared with committed writes (and stays so, growing only by
//           committed writes, across restarts), a comparison never fails
//           on it, and a discard needs a leader of promise ≥ P that judged
//           the copy above every position committed, which it is not.
//        g. A copy repaired (RepairRecord: damaged at rest, bucket/repair.h;
//           or marked for repair at run time, step 3, under its intact
//           promise) is void: it acks no write or commit, never leads (the host
//           starts no leadership of it), and offers nothing (it holds
//           nothing). Its participant's membership host shrinks it out of
//           the government (membership_host.h step 6); the table's next
//           step grows it back. The leader's probe (an empty Catchup:
//           it knows nothing of the copy) ends the repair in a ResetRecord
//           under the leader's promise, staged before anything is acked,
//           once our view of the government is fed and does not name us
//           (a probe of an old growth, delayed past that growth's ack,
//           must not make an empty member of a void one); a
//           chunk or a snapshot leaves it void (meant for a copy its leader
//           believes holds something: maybe from an ack of its life before
//           the damage, still in flight at the restart): a promise the damage took was at
//           most the acclimating leader's (a leader serves under the
//           highest promise of its bucket's governments so far), and while
//           void it acked nothing it could have broken.
//        h. What the leader believes of a newcomer comes from acks, which
//           the network may delay past a restart or a reset of the copy:
//           an ack of the copy's life before its damage would make the
//           leader believe an end the copy no longer holds (it stops at
//           the gap; the growth stalls). Each CatchupAck names its copy's
//           life (CopyLife: the host's boot, and the copy's resets and
//           repairs in it). The leader ignores an ack of an older life
//           than one it heard; an ack of a newer life starts a newcomer
//           not yet joined over from a probe (belief dropped, offer and
//           fetch forgotten). A joined newcomer stays joined (un-joining
//           it could let the ack be decided without it): the leader
//           believes the newer life's holdings (an offer is verified as
//           in f) and streams it what it lacks, as in b; its acks keep
//           counting in every commit meanwhile. A void copy says
//           nothing (it acks nothing): its host's repair voids the
//           growth instead (step 9g).
//      Why it is safe: the ack is proposed only when the newcomers hold
//      every committed position, and every later commit includes them
//      until the ack is decided or can never be. A restart loses the joint
//      set, so after a boot the host holds every bucket it leads (no
//      leadership start) until a bump (an ack keeping the government) has
//      moved its step past any ack proposed before the crash.
//
// Safety invariants (check_invariants, and the simulator's checkers):
//   - Positions are contiguous: commit_end only grows, by whole writes.
//   - The leader commits write n only with acks for (P, n) from every member
//     of the current government, each given while that member's promise was
//     P and while it held n durably: an acknowledged write is in the log or
//     the register of every member (DESIGN §7.1).
//   - A replica never acks under a promise lower than one it has persisted;
//     promises only grow (§7.5).
//   - At most one write in flight; the register, if any, starts at commit_end.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <set>
#include <vector>

#include "consensus/dedup.h"
#include "consensus/member_set.h"
#include "consensus/phaser_messages.h"

namespace coworker::consensus {

// The current government of a bucket as the membership log has it.
struct Government {
  uint64_t slot = 0;                     // membership slot it is current as of
  std::vector<ParticipantId> replicas;   // replicas[0] leads
  uint64_t step = 0;                     // government changes so far (bucket/table.h)
  // For the host, not the phaser: ticks to wait before a leadership of ours
  // starts (the previous leader, still a member, may hold a read lease:
  // bucket/membership_host.h step 3).
  uint64_t start_wait = 0;
  // A government left with one member by a removal, not yet confirmed by an
  // ack: the removed member (step 4: nothing commits meanwhile).
  ParticipantId heir = no_participant;
  ParticipantId leader() const { return replicas.empty() ? no_participant : replicas[0]; }
  bool contains(ParticipantId id) const;
};

// What survives a crash: rebuilt by replaying PhaserRecords in order.
class PhaserDurable {
 public:
  void apply(const PhaserRecord& record);

  Promise promise;
  Position commit_end = 0;
  CommitMark last_commit;                // the newest committed write
  Position last_commit_first = 0;
  CommitMark last_filled;                // the newest committed write with entries
  WritePtr register_;                    // uncommitted, starts at commit_end
  DedupTable dedup;
  std::vector<BucketEntry> log;          // committed entries (simulator use)
  std::vector<WritePtr> writes;          // committed writes with entries (simulator use)
  Position log_start = 0;                // the position of log[0]: a snapshot's end (simulator)
  bool keep_log = false;                 // fill `log` and `writes` while replaying
  bool repairing = false;                // a RepairRecord's void copy (step 9g)
};

// A durable image as checkpoint records (Phaser::checkpoint): a
// CheckpointRecord, then a RegisterRecord of its register if it holds one
// (a void copy, step 9g: its RepairRecord).
// Replay may stop between the two (a crash keeps any prefix of a batch
// cut at a record boundary, and a round may span batches), so a
// CheckpointRecord at the committed end keeps the register folded before
// it; one above it (a snapshot) drops it.
// The image's dedup table must hold nothing accepted beyond committed.
std::vector<PhaserRecord> checkpoint_records(PhaserDurable image);

class Phaser {
 public:
  struct Config {
    uint32_t bucket = 0;
    ParticipantId self = no_participant;
    size_t write_bytes_max = size_t{1} << 20;
    size_t write_messages_max = 4096;
    size_t queue_messages_max = 1 << 16;
    uint32_t resend_ticks = 3;
    // Step 7: idle ticks after a commit before its trailing notice goes (a
    // next write within them carries the commit instead: under load almost
    // every one does, and the notices and their acks were ~40% of the peer
    // frames at 64 clients). 1: the first tick after the commit.
    uint32_t notice_ticks = 1;
    uint32_t report_ticks = 10;  // the departure timeout, in ticks
    size_t chunk_bytes = size_t{1} << 20;  // step 9b: entry bytes per Catchup
    // DESIGN §3: a connection's state here expires this long after its last
    // message here, by the times leaders stamp on writes (0: never). Every
    // replica applies the expiry the committed writes carry, whatever its own
    // setting.
    uint64_t connection_expiry_ms = 24ull * 3600 * 1000;
    // Step 9h: the host's boot, a counter durable before any ack of this
    // boot leaves (bucket/host.h), the first half of the copy's life.
    uint32_t boot = 0;
  };

  enum class Role : uint8_t { follower, starting, leading };

  Phaser(Config config, const PhaserDurable& durable);

  // Inputs. Each returns what to do next.
  PhaserOutput on_government(const Government& government);
  PhaserOutput start_leadership(Promise promise);
  PhaserOutput on_append(uint64_t token, std::vector<BucketEntry> messages);
  PhaserOutput on_message(ParticipantId from, const PhaserMessage& message);
  PhaserOutput on_persisted(uint64_t ticket);
  // A tick carries the host's clock (ms since the epoch: comparable across
  // participants, as leaders change; DESIGN §3 expiry). It may go back; the
  // writes' times never do.
  PhaserOutput on_tick(uint64_t now_ms);
  // Step 9. grow() again with the same step adds newcomers (idempotent);
  // another step replaces the growth. Ignored unless serving.
  PhaserOutput grow(uint64_t step, const std::vector<ParticipantId>& newcomers);
  PhaserOutput end_growth();
  // The host's answer to a Fetch.
  PhaserOutput on_fetched(ParticipantId to, std::vector<WritePtr> writes);
  // The host's other answer to a Fetch: its log no longer holds the writes
  // from there (retention), so the newcomer gets a snapshot (step 9b).
  PhaserOutput on_fetch_retained(ParticipantId to);
  bool growth_ready(uint64_t step) const;
  bool growing() const { return _growth.has_value(); }

  Role role() const { return _role; }
  bool serving() const { return _role == Role::leading; }
  Promise promise() const { return _promise; }
  Position commit_end() const { return _commit_end; }
  const Government& government() const { return _government; }
  const WritePtr& register_write() const { return _register; }
  bool needs_repair() const { return _repair; }
  // Step 9g: a void copy (damaged at rest), until a leader acclimates it.
  bool repairing() const { return _repairing; }
  size_t queued() const { return _queue.size(); }
  // Leader, for monitoring: how many positions `replica` is behind the
  // write in flight (0 when it acked it, or nothing is in flight).
  Position lag_of(ParticipantId replica) const {
    if (!_in_flight || _in_flight->acked.count(replica) != 0) return 0;
    return _in_flight->write->end() - _commit_end;
  }
  // Leader: the newcomers being acclimated (step 9), for monitoring.
  size_t newcomers() const { return _growth ? _growth->newcomers.size() : 0; }
  // Connections the dedup table tracks in this bucket.
  size_t tracked_connections() const { return _dedup.connections(); }
  size_t tracked_connection_bytes() const { return _dedup.memory_bytes(); }
  // Leading and serving with no position committed, no register and no
  // write in flight: the bucket's log is empty on every member.
  bool empty() const {
    return serving() && _commit_end == 0 && _register == nullptr && !_in_flight;
  }

  // What replaying every record this phaser asked for so far would give
  // (staged, not necessarily durable yet): a host replaced in the same
  // process (a participant arriving anew) continues from it, with its sends
  // held until those records are durable (bucket/host.h).
  PhaserDurable image() const;
  // The same image as records for a checkpoint (the log store's, DESIGN
  // §6): a CheckpointRecord, then a RegisterRecord of the register if one
  // is held. Folded over any earlier state (PhaserDurable::apply) they give
  // image() again, minus the simulator's log.
  std::vector<PhaserRecord> checkpoint() const;

  void check_invariants() const;

 private:
  // A client message waiting in the queue or in the write in flight.
  struct Waiter {
    uint64_t request = 0;
    uint32_t index = 0;
  };
  struct Pending {
    std::vector<Waiter> waiters;
  };
  struct Request {
    uint64_t token = 0;
    std::vector<MessageResult> results;
    std::vector<HandedBack> handed_back;
    size_t remaining = 0;
  };
  struct Queued {
    BucketEntry entry;
    std::vector<Waiter> untracked_waiters;  // for entries without a connection
  };
  struct InFlight {
    WritePtr write;
    std::vector<std::vector<Waiter>> untracked;  // per entry, for untracked ones
    bool own_durable = false;
    uint64_t own_ticket = 0;
    MemberSet acked;
    uint32_t ticks_since_send = 0;
  };

  // Step 9, the leader's view of one newcomer.
  struct Newcomer {
    ParticipantId id = no_participant;
    std::optional<Position> end;  // acked: it holds every committed position before
    std::optional<CommitMark> offer;  // 9f: its copy, to verify before believing more
    std::optional<CopyLife> life;     // 9h: the newest life its acks spoke of
    // A Fetch is out, from this position (step 9b: one at a time).
    std::optional<Position> fetching;
    bool joined = false;          // in the joint set
    uint32_t ticks = 0;           // since the last Catchup
  };
  struct Growth {
    uint64_t step = 0;
    std::vector<Newcomer> newcomers;
  };

  // Replica side (steps 3, trailing commits).
  void on_write(ParticipantId from, const WritePtr& write, PhaserOutput& out);
  void on_commit_notice(ParticipantId from, const CommitNotice& notice, PhaserOutput& out);
  // Step 9, the newcomer and the leader.
  void on_catchup(ParticipantId from, const Catchup& catchup, PhaserOutput& out);
  void on_catchup_snapshot(ParticipantId from, const CatchupSnapshot& snapshot,
                           PhaserOutput& out);
  void on_catchup_ack(const CatchupAck& ack, PhaserOutput& out);
  void advance(Newcomer& newcomer, PhaserOutput& out);
  void stream_joined(Newcomer& newcomer, PhaserOutput& out);
  void fetch_for(Newcomer& newcomer, Position from, PhaserOutput& out);
  bool fetch_stale(Newcomer& newcomer, PhaserOutput& out);
  void verify_offer(Newcomer& newcomer, PhaserOutput& out);
  bool compare_offer(const Write& write, PhaserOutput& out);
  uint64_t reset_copy(PhaserOutput& out);
  uint64_t raise_promise(const Promise& promise, PhaserOutput& out);
  void end_repair(const Promise& leader, PhaserOutput& out);
  CatchupAck catchup_ack(const Promise& promise) const;
  void ack_catchup(ParticipantId to, const CatchupAck& ack, uint64_t wait, PhaserOutput& out);
  void tick_growth(PhaserOutput& out);
  void send_catchup(ParticipantId to, std::vector<WritePtr> writes, PhaserOutput& out,
                    std::optional<CommitMark> discard = std::nullopt);
  Newcomer* newcomer(ParticipantId id);
  bool is_member(ParticipantId id) const { return _government.contains(id); }
  bool apply_commit_mark(const CommitMark& mark, const Promise& leader, PhaserOutput& out);
  bool matches_committed(const Write& write) const;
  void mark_for_repair(PhaserOutput& out);
  void drop_copy();
  // Leader side (steps 1, 2, 4, 5, 6).
  void on_ack(const Ack& ack, PhaserOutput& out);
  void on_nack(const Nack& nack, PhaserOutput& out);
  void admit(uint64_t request, uint32_t index, BucketEntry entry, PhaserOutput& out);
  void maybe_start_write(PhaserOutput& out);
  void stamp(Write& write) const;
  void maybe_commit(PhaserOutput& out);
  void commit_in_flight(PhaserOutput& out);
  void send_to_members(const PhaserMessage& message, PhaserOutput& out,
                       const MemberSet* skip);
  void step_down(PhaserOutput& out);
  void resolve(const Waiter& waiter, MessageResult result, PhaserOutput& out);
  void hand_back(const std::vector<Waiter>& waiters, const BucketEntry& entry, PhaserOutput& out);
  uint64_t persist(PhaserRecord record, PhaserOutput& out);
  // fn(id) for every member of the government but us, in government order,
  // then every newcomer that joined (step 9c): whoever must ack a commit.
  template <typename Fn>
  void for_each_other(Fn fn) const {
    for (ParticipantId id : _government.replicas) {
      if (id != _config.self) fn(id);
    }
    if (_growth) {
      for (const Newcomer& n : _growth->newcomers) {
        if (n.joined) fn(n.id);
      }
    }
  }
  bool is_other(ParticipantId id) const;
  bool in_flight_sendable() const;
  bool all_others_in(const MemberSet& set) const;

  Config _config;
  Role _role = Role::follower;
  Government _government;

  // Mirrors of durable state (PhaserDurable) kept current.
  Promise _promise;
  Position _commit_end = 0;
  CommitMark _last_commit;
  Position _last_commit_first = 0;
  CommitMark _last_filled;
  WritePtr _register;
  DedupTable _dedup;
  bool _repair = false;
  // Step 9f: the copy has positions not yet compared with a leader's in
  // this life (set at boot when it holds any; cleared by a comparison that
  // matches, a reset, or a snapshot taken).
  bool _offered = false;
  // Step 9g: the copy is void (a RepairRecord), until a leader's Catchup.
  bool _repairing = false;
  // Step 9h: resets and repairs of the copy in this boot.
  uint32_t _resets = 0;
  // The promise of the last leader whose Catchup or CatchupSnapshot we took
  // (step 9e): it is acclimating us, whatever our own view of the
  // government says (a returning member's may still list us), so a gap in
  // its writes is a reordered or lost Catchup it resends, never damage.
  Promise _acclimated_by;
  bool acclimating(const Promise& leader) const {
    return !is_member(_config.self) || leader == _acclimated_by;
  }

  bool _register_durable = false;
  uint64_t _register_ticket = 0;
  uint64_t _commit_ticket = 0;  // the newest commit record, until durable
  uint64_t _promise_ticket = 0;  // step 9f: the newest raise of the promise, until durable

  // Replica: acks waiting for their disk ticket. `needs_register`: the ack
  // claims the register holds the write, so it goes only if it still does.
  struct AckAfter {
    Ack ack;
    bool needs_register = false;
    ParticipantId to = no_participant;
    std::optional<CatchupAck> catchup;  // instead of `ack` (step 9b): no conditions
  };
  std::map<uint64_t, AckAfter> _acks_after_persist;  // by ticket

  // Leader.
  Promise _leading_promise;  // the promise being started or led with
  std::deque<Queued> _queue;
  std::map<std::pair<ConnectionId, uint64_t>, Pending> _pending;  // by (connection, series)
  std::map<uint64_t, Request> _requests;                           // by request id
  uint64_t _next_request = 1;
  std::optional<InFlight> _in_flight;
  WritePtr _last_written;  // the newest committed write, while leading (step 9c)
  std::optional<Growth> _growth;
  MemberSet _commit_unacked;  // trailing commit not yet acked
  uint32_t _commit_ticks = 0;
  std::map<ParticipantId, uint32_t> _silent_ticks;

  uint64_t _next_ticket = 1;
  uint64_t _now = 0;  // the clock of the last tick (ms)
};

}  // namespace coworker::consensus
