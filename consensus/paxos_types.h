// The values Paxos exchanges with the world: ids, ballots, log entries, the
// peer messages, the records it asks to persist, the durable state those
// records build, and the Output of every call.
//
// Everything is a plain struct of integers, byte strings and vectors, so the
// peer protocol's binary codec (written with the server) can encode each one
// field by field. Values are opaque bytes to Paxos: the membership layer
// (issue 4) decides what an entry means.
//
// No state lives here except Durable, which is owned by whoever holds the
// acceptor's disk image: the Paxos object keeps its own mirror (updated by the
// same apply()), and the driver keeps the on-disk copy it recovers from.
#pragma once

#include <compare>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "consensus/ids.h"

namespace coworker::consensus {

using Slot = uint64_t;    // log slots start at 1; 0 = "none yet"
using Tick = uint64_t;    // logical time, advanced only by on_tick()

// A ballot is (round, node): unique because a node never reuses a round
// (it always picks one above the promise it persisted). Compared
// lexicographically; the zero ballot is below every real one.
struct Ballot {
  uint64_t round = 0;
  ParticipantId node = no_participant;
  friend auto operator<=>(const Ballot&, const Ballot&) = default;
  bool zero() const { return round == 0; }
};

// Who proposed an entry: unique forever because it carries the proposer's
// boot counter, persisted before the first proposal of a boot.
struct ProposalId {
  ParticipantId proposer = no_participant;
  uint64_t boot = 0;
  uint64_t sequence = 0;
  friend auto operator<=>(const ProposalId&, const ProposalId&) = default;
};

// One log entry. A noop (proposer 0, empty value) fills a slot that a new
// leader found open below the highest slot any acceptor reported.
//
// A reconfiguration is an entry with non-empty `voters`: decided at slot s,
// it schedules `voters` for every slot >= s + α (α = window_slots_max), but
// only if the latest scheduled voters at s equal `replaces` (compare and
// swap, so a stale change decided after a newer one is void). Paxos reads
// these two fields itself; `value` stays opaque (the membership layer puts
// its own record of the change there).
struct Entry {
  ProposalId id;
  std::string value;
  std::vector<ParticipantId> voters{};    // sorted; empty: not a reconfiguration
  std::vector<ParticipantId> replaces{};  // sorted
  bool noop() const { return id.proposer == no_participant; }
  bool reconfigures() const { return !voters.empty(); }
  friend bool operator==(const Entry&, const Entry&) = default;
};

// Voters scheduled to govern slots from some first slot on, and the slot of
// the reconfiguration that scheduled them (0 for the initial voters).
struct ScheduledVoters {
  Slot decided_at = 0;
  std::vector<ParticipantId> voters;  // sorted, unique, odd size
  friend bool operator==(const ScheduledVoters&, const ScheduledVoters&) = default;
};

// The configuration schedule: first slot governed -> voters. The voters of
// slot t are those of the last entry whose key is <= t.
using Schedule = std::map<Slot, ScheduledVoters>;

// The application's state as of `slot` (all slots <= slot applied), opaque
// bytes, and the configuration schedule as of that slot (the voters of
// slot + 1 and every later change decided at or before `slot`), which Paxos
// fills in itself. slot 0 means "no snapshot".
struct Snapshot {
  Slot slot = 0;
  std::string bytes;
  Schedule schedule{};
};

struct SlotEntry {
  Slot slot = 0;
  Entry entry;
};

struct AcceptedEntry {
  Slot slot = 0;
  Ballot ballot;
  Entry entry;
};

// ---- Peer messages (the sender is known to the transport) ----

// Phase 1a: promise not to accept below `ballot`; report what you accepted
// in slots >= from.
struct Prepare {
  Ballot ballot;
  Slot from = 0;
};

// Phase 1b.
struct Promised {
  Ballot ballot;
  Slot from = 0;
  Slot compacted_through = 0;  // the acceptor holds nothing at or below this
  std::vector<AcceptedEntry> accepted;
};

// Answer to a Prepare or an Accept the receiver will not honour: either it
// promised a higher ballot, or (for a Prepare) a leader's lease still binds it.
struct Reject {
  Ballot ballot;    // what was refused
  Ballot promised;  // the receiver's promise (zero for a learner)
  ParticipantId leader = no_participant;
};

// Phase 2a, sent to every member (learners keep the entries to learn them
// when a later commit point covers them). Carries the leader's commit point.
struct Accept {
  Ballot ballot;
  Slot decided_through = 0;
  std::vector<SlotEntry> entries;
};

// Phase 2b, voters only.
struct Accepted {
  Ballot ballot;
  std::vector<Slot> slots;
};

// The leader's heartbeat to every member: keeps followers from electing,
// grants the leader its lease, and carries the commit point.
// `sent` is the leader's tick at sending, echoed by the ack: the lease is
// counted from it.
struct Heartbeat {
  Ballot ballot;
  Tick sent = 0;
  Slot decided_through = 0;
};

struct HeartbeatAck {
  Ballot ballot;
  Tick sent = 0;
  Slot decided_through = 0;
};

// A lagging participant asks for decided entries from `from` on.
struct CatchUp {
  Slot from = 0;
};

// Decided entries first..first+n-1, preceded by a snapshot when the sender
// no longer keeps the entries the receiver asked for.
struct Learn {
  Snapshot snapshot;
  Slot first = 0;
  std::vector<Entry> entries;
};

// A proposer hands its pending proposals to the leader.
struct Forward {
  std::vector<Entry> entries;
};

// The leader's answer to a Forward: these ids are decided already.
struct Forwarded {
  std::vector<ProposalId> decided;
};

using Message = std::variant<Prepare, Promised, Reject, Accept, Accepted, Heartbeat, HeartbeatAck,
                             CatchUp, Learn, Forward, Forwarded>;

// ---- What must survive a crash ----

struct PersistBoot {
  uint64_t boots = 0;
};
struct PersistPromise {
  Ballot ballot;
};
struct PersistAccept {
  AcceptedEntry accepted;
};
// Installs a snapshot and drops every accepted entry at or below its slot.
struct PersistSnapshot {
  Snapshot snapshot;
};

using PersistRecord = std::variant<PersistBoot, PersistPromise, PersistAccept, PersistSnapshot>;

// The durable image of one participant's Paxos state: the fold of its
// persist records. Recovering a participant = constructing Paxos from it.
struct Durable {
  uint64_t boots = 0;
  Ballot promised;
  Snapshot snapshot;
  std::map<Slot, AcceptedEntry> accepted;  // slots > snapshot.slot

  void apply(const PersistRecord& record);
};

// ---- Outputs ----

struct Send {
  ParticipantId to = no_participant;
  Message message;
};

struct Decided {
  Slot slot = 0;
  Entry entry;
  // The voters whose accepts decided the slot, when this member decided it
  // as the leader (empty when it learned the decision): lets a checker
  // verify that each slot is decided by a majority of its own configuration.
  std::vector<ParticipantId> quorum{};
};

// What one call produced. The driver MUST make `persist` durable before it
// sends any message of `send` (or of a later Output) and before it applies
// `installed` and `decided`. It applies `installed` (if any) before
// `decided`, and `decided` in order: slots are contiguous and increasing.
struct Output {
  std::vector<PersistRecord> persist;
  std::vector<Send> send;
  std::optional<Snapshot> installed;
  std::vector<Decided> decided;

  bool empty() const { return persist.empty() && send.empty() && !installed && decided.empty(); }
};

}  // namespace coworker::consensus
