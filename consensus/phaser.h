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
//      register then.
//   4. Commit needs the leader's own copy durable and an ack from every other
//      member of the current government; a member that departs is dropped
//      from the count and the write is resent to the rest.
//   5. Leadership start (boot, restart, usurp): re-propose the register under
//      the new promise with the same positions (or, without a register, an
//      empty write carrying the commit of the last position), persisting it
//      as our own copy — which makes the promise durable — while sending it;
//      commit after our copy is durable and all acks are in; only then write
//      client messages (they may be queued meanwhile: the register's entries
//      are already in the dedup state, so dedup decisions are complete). The
//      host makes the participant's counter durable before the start, so the
//      promise is never reused even if a crash loses the re-proposal.
//   6. A nack with a higher promise, or a government led by another, ends the
//      leadership: every waiting client is answered 503 (resubmit).
//   7. Ticks: a write or trailing commit not acked within resend_ticks is
//      resent (the transport never retries); a member silent for
//      report_ticks is reported to the membership leader.
//   8. Hold: while the host holds the bucket (the growth of an empty
//      bucket is being confirmed in the membership log, bucket/host.h), a
//      leader starts no write of client messages (they queue; the
//      leadership start's empty write still runs). The hold outlasts roles:
//      only the host releases it. The host proposes growth only while the
//      held leader is empty(), so a government that grows loses nothing.
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
  WritePtr register_;                    // uncommitted, starts at commit_end
  DedupTable dedup;
  std::vector<BucketEntry> log;                // committed entries (simulator use)
  bool keep_log = false;                 // fill `log` while replaying
};

class Phaser {
 public:
  struct Config {
    uint32_t bucket = 0;
    ParticipantId self = no_participant;
    size_t write_bytes_max = size_t{1} << 20;
    size_t write_messages_max = 4096;
    size_t queue_messages_max = 1 << 16;
    uint32_t resend_ticks = 3;
    uint32_t report_ticks = 10;  // the departure timeout, in ticks
  };

  enum class Role : uint8_t { follower, starting, leading };
  enum class Hold : bool { no, yes };

  Phaser(Config config, const PhaserDurable& durable);

  // Inputs. Each returns what to do next.
  PhaserOutput on_government(const Government& government);
  PhaserOutput start_leadership(Promise promise);
  PhaserOutput on_append(uint64_t token, std::vector<BucketEntry> messages);
  PhaserOutput on_message(ParticipantId from, const PhaserMessage& message);
  PhaserOutput on_persisted(uint64_t ticket);
  PhaserOutput on_tick();
  // Step 8. Releasing starts the queued write.
  PhaserOutput set_hold(Hold hold);

  Role role() const { return _role; }
  bool serving() const { return _role == Role::leading; }
  Promise promise() const { return _promise; }
  Position commit_end() const { return _commit_end; }
  const Government& government() const { return _government; }
  const WritePtr& register_write() const { return _register; }
  bool needs_repair() const { return _repair; }
  size_t queued() const { return _queue.size(); }
  bool held() const { return _hold == Hold::yes; }
  // Leader, for monitoring: how many positions `replica` is behind the
  // write in flight (0 when it acked it, or nothing is in flight).
  Position lag_of(ParticipantId replica) const {
    if (!_in_flight || _in_flight->acked.count(replica) != 0) return 0;
    return _in_flight->write->end() - _commit_end;
  }
  // Connections the dedup table tracks in this bucket.
  size_t tracked_connections() const { return _dedup.connections(); }
  size_t tracked_connection_bytes() const { return _dedup.memory_bytes(); }
  // Leading and serving with no position committed, no register and no
  // write in flight: the bucket's log is empty on every member.
  bool empty() const {
    return serving() && _commit_end == 0 && _register == nullptr && !_in_flight;
  }

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

  // Replica side (steps 3, trailing commits).
  void on_write(ParticipantId from, const WritePtr& write, PhaserOutput& out);
  void on_commit_notice(ParticipantId from, const CommitNotice& notice, PhaserOutput& out);
  bool apply_commit_mark(const CommitMark& mark, PhaserOutput& out);
  bool matches_committed(const Write& write) const;
  // Leader side (steps 1, 2, 4, 5, 6).
  void on_ack(const Ack& ack, PhaserOutput& out);
  void on_nack(const Nack& nack, PhaserOutput& out);
  void admit(uint64_t request, uint32_t index, BucketEntry entry, PhaserOutput& out);
  void maybe_start_write(PhaserOutput& out);
  void maybe_commit(PhaserOutput& out);
  void commit_in_flight(PhaserOutput& out);
  void send_to_members(const PhaserMessage& message, PhaserOutput& out,
                       const MemberSet* skip);
  void step_down(PhaserOutput& out);
  void resolve(const Waiter& waiter, MessageResult result, PhaserOutput& out);
  uint64_t persist(PhaserRecord record, PhaserOutput& out);
  // fn(id) for every member of the government but us, in government order.
  template <typename Fn>
  void for_each_other(Fn fn) const {
    for (ParticipantId id : _government.replicas) {
      if (id != _config.self) fn(id);
    }
  }
  bool all_others_in(const MemberSet& set) const;

  Config _config;
  Role _role = Role::follower;
  Hold _hold = Hold::no;
  Government _government;

  // Mirrors of durable state (PhaserDurable) kept current.
  Promise _promise;
  Position _commit_end = 0;
  CommitMark _last_commit;
  Position _last_commit_first = 0;
  WritePtr _register;
  DedupTable _dedup;
  bool _repair = false;

  bool _register_durable = false;
  uint64_t _register_ticket = 0;
  uint64_t _commit_ticket = 0;  // the newest commit record, until durable

  // Replica: acks waiting for their disk ticket. `needs_register`: the ack
  // claims the register holds the write, so it goes only if it still does.
  struct AckAfter {
    Ack ack;
    bool needs_register = false;
    ParticipantId to = no_participant;
  };
  std::map<uint64_t, AckAfter> _acks_after_persist;  // by ticket

  // Leader.
  Promise _leading_promise;  // the promise being started or led with
  std::deque<Queued> _queue;
  std::map<std::pair<ConnectionId, uint64_t>, Pending> _pending;  // by (connection, series)
  std::map<uint64_t, Request> _requests;                           // by request id
  uint64_t _next_request = 1;
  std::optional<InFlight> _in_flight;
  MemberSet _commit_unacked;  // trailing commit not yet acked
  uint32_t _commit_ticks = 0;
  std::map<ParticipantId, uint32_t> _silent_ticks;

  uint64_t _next_ticket = 1;
};

}  // namespace coworker::consensus
