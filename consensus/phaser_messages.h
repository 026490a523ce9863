// What phasers exchange, persist and answer: plain values, easy to encode.
//
// A Write is immutable once made and shared (shared_ptr<const Write>) between
// the persist of the leader's own copy and the sends to each replica, so a
// 1 MiB write is never copied inside a participant.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <variant>
#include <vector>

#include "consensus/ids.h"

namespace coworker::consensus {

// One client message as it sits in a bucket's log.
struct BucketEntry {
  std::string identifier;
  ConnectionId connection;  // !valid(): sent without dedup (at-least-once)
  uint64_t series = 0;
  uint64_t window = 0;  // first series of the client's window: dedup's "last window"
  std::string body;
  friend bool operator==(const BucketEntry&, const BucketEntry&) = default;
};

// A BucketEntry read in place (bucket/entry_reader.h): the same fields, its
// bytes as views into the buffer it was decoded from, valid while that is.
struct EntryView {
  std::string_view identifier;
  ConnectionId connection;
  uint64_t series = 0;
  uint64_t window = 0;
  std::string_view body;

  BucketEntry owned() const {
    return BucketEntry{std::string(identifier), connection, series, window, std::string(body)};
  }
};

// "Every position before `end` is committed; the write ending at `end` is
// write `number` with this checksum." Carried by writes and trailing commits.
struct CommitMark {
  Position end = 0;
  uint64_t number = 0;
  uint32_t checksum = 0;
  friend bool operator==(const CommitMark&, const CommitMark&) = default;
};

// Phase one of a round: write `number` of the leader holding `promise`.
struct Write {
  uint32_t bucket = 0;
  Promise promise;
  uint64_t number = 0;
  Position first = 0;  // position of entries[0]; the write covers [first, end())
  // The leader's clock when it made the write (ms, never earlier than the
  // bucket's newest committed write: times grow along the log), and the
  // connection expiry it carries: once committed, every connection last seen
  // before expire_before is dropped from the bucket's dedup table (dedup.h).
  uint64_t time = 0;
  uint64_t expire_before = 0;
  std::vector<BucketEntry> entries;
  // The checksum of the newest write with entries before `first` (0: none),
  // as the leader held it: checksums chain, so two writes with one checksum
  // at one position say that the whole logs below them agree (phaser.h
  // step 3: a replica takes a write only on the newest write it holds).
  uint32_t prior = 0;
  uint32_t checksum = 0;  // over prior, first, the times and every entry (checksum_of)
  CommitMark commit;      // the previous write, committed

  Position end() const { return first + entries.size(); }
};
using WritePtr = std::shared_ptr<const Write>;

// The checksum a Write carries: CRC32C over its prior, its first position,
// its times and its entries. Two writes with equal checksums at one position are taken
// for the same write (phaser.h step 3), so the times are covered: replicas
// expiring by different times would hold different dedup tables.
uint32_t checksum_of(const Write& write);

// A replica holds write (promise, number) durably — or, with commit_only, has
// applied the trailing commit up to `end`.
struct Ack {
  uint32_t bucket = 0;
  Promise promise;
  uint64_t number = 0;
  Position end = 0;
  bool commit_only = false;
  ParticipantId from = no_participant;
};

// The receiver holds a higher promise: the sender's leadership is stale.
struct Nack {
  uint32_t bucket = 0;
  Promise promise;  // the receiver's
  ParticipantId from = no_participant;
};

// An idle leader's trailing commit (DESIGN §3: replicas commit within one
// heartbeat of their leader).
struct CommitNotice {
  uint32_t bucket = 0;
  Promise promise;
  CommitMark commit;
};

// Growth (phaser.h step 9), leader → newcomer: committed writes, whole and
// in position order, for the newcomer to take as committed. Empty: a probe,
// answered with the newcomer's commit end.
struct Catchup {
  uint32_t bucket = 0;
  Promise promise;  // the leader's
  std::vector<WritePtr> writes;
  // Step 9f: the offer this leader found to hold positions it never
  // committed; the newcomer drops its copy if it still offers exactly this.
  std::optional<CommitMark> discard;
};

// Newcomer → leader: every position before `end` is committed here durably
// — or, with `offer` (step 9f), a copy not yet compared with a leader's:
// it claims positions up to `end`, its newest write with entries being
// `offer` (offer->end == end), and the leader believes nothing of it.
// Which state of a newcomer's copy an ack speaks of (phaser.h step 9h):
// the host's boot (a counter it made durable before any ack of that boot)
// and the resets and repairs of the copy in that boot. Later lives compare
// higher; an ack of an earlier life is an old packet.
struct CopyLife {
  uint32_t boot = 0;
  uint32_t resets = 0;
  friend auto operator<=>(const CopyLife&, const CopyLife&) = default;
};

struct CatchupAck {
  uint32_t bucket = 0;
  Promise promise;  // the Catchup's
  Position end = 0;
  ParticipantId from = no_participant;
  std::optional<CommitMark> offer;
  CopyLife life;
};

// A bucket's committed state as of its commit end, without entries: what a
// checkpoint persists (CheckpointRecord) and a snapshot carries
// (CatchupSnapshot). The dedup table is an image's (nothing accepted beyond
// committed), shared like a Write.
class DedupTable;
struct CommittedState {
  Promise promise;
  Position commit_end = 0;
  CommitMark last_commit;  // last_commit.end == commit_end
  Position last_commit_first = 0;
  // The newest committed write with entries (last_filled.end == commit_end;
  // all zero before the first): last_commit may be an empty write of a
  // leadership start, which holds no position (phaser.h step 9f compares
  // copies by this one).
  CommitMark last_filled;
  std::shared_ptr<const DedupTable> dedup;  // never null
};

// Leader → newcomer (step 9b): the writes from the newcomer's end are gone
// from the leader's log (retention), so the committed state instead, as of
// the leader's commit end (state.promise: the leader's). The newcomer
// persists it as its checkpoint and holds no entry below it.
struct CatchupSnapshot {
  uint32_t bucket = 0;
  CommittedState state;
};

using PhaserMessage =
    std::variant<WritePtr, Ack, Nack, CommitNotice, Catchup, CatchupAck, CatchupSnapshot>;

// The bucket a message belongs to (a WritePtr to route is never null).
inline uint32_t bucket_of(const PhaserMessage& message) {
  return std::visit(
      [](const auto& m) -> uint32_t {
        if constexpr (std::is_same_v<std::decay_t<decltype(m)>, WritePtr>) {
          return m->bucket;
        } else {
          return m.bucket;
        }
      },
      message);
}

// Durable records a phaser asks for. The driver appends them in order and
// reports each ticket through Phaser::on_persisted in the same order.
struct PromiseRecord {
  Promise promise;
};
struct RegisterRecord {
  WritePtr write;
};
struct CommitRecord {
  CommitMark mark;
  Position first = 0;  // first position of the committed write
};
// A bucket's non-entry durable state as of its place in the log (the log
// store's checkpoints, DESIGN §6): replaces the state the records before it
// folded to, so the log may lose them. Not a phaser's output: its host
// stages it (BucketHost::checkpoint), followed by a RegisterRecord of the
// register the phaser holds, if any.
struct CheckpointRecord {
  CommittedState state;
  // A round's: the phaser held a register, whose RegisterRecord follows.
  // Without one, a checkpoint at the committed end drops any register
  // folded before it (a record that replaced or committed it may have
  // been lost to damage, and recovery takes a proven round as the whole
  // state). A snapshot's is false: it drops the register anyway.
  bool register_follows = false;
};
// Step 9f: the bucket's copy here is dropped, whatever it held (its offer
// did not match a leader's log): nothing committed, no register, an empty
// dedup table; the promise stays (raised to `promise`). Logged as the log
// store's bucket_reset: what came before counts no more.
struct ResetRecord {
  Promise promise;
};
// Per-bucket repair (bucket/repair.h): the copy here was damaged at rest
// and is void. It holds nothing, acks nothing and leads nothing until a
// leader acclimates it (its first Catchup or CatchupSnapshot, phaser.h step
// 9g). Everything before it counts no more, the promise included (`promise`
// is what survived the damage; a Catchup raises it before anything is
// acked). Logged as the log store's bucket_reset, like ResetRecord.
struct RepairRecord {
  Promise promise;
};
using PhaserRecord = std::variant<PromiseRecord, RegisterRecord, CommitRecord, CheckpointRecord,
                                  ResetRecord, RepairRecord>;

struct Persist {
  uint64_t ticket = 0;
  PhaserRecord record;
};

struct PhaserSend {
  ParticipantId to = no_participant;
  PhaserMessage message;
};

// Growth: the host reads committed writes of this bucket from its storage,
// from the write holding `from`, about `bytes_max` bytes of entries (at least
// one write), and hands them back through Phaser::on_fetched(to, writes).
struct Fetch {
  ParticipantId to = no_participant;
  Position from = 0;
  size_t bytes_max = 0;
};

// How one client message fared.
enum class Outcome : uint8_t {
  appended,            // 200, duplicate false
  duplicate,           // 200, duplicate true: the original position
  superseded,          // 409: a straggler of an abandoned window, not logged now
  unavailable,         // 503: no serving leader here; resubmit
  overloaded,          // 429: the bucket's queue is full; resubmit later
  expired,             // 409 connection_expired: not logged now; reconnect (dedup.h)
  handed_back,         // never answered to a client: the leadership ended with the
                       // message queued, or in flight with a connection; the server
                       // takes it to the next leader (phaser.h step 6, Reply)
};

struct MessageResult {
  Outcome outcome = Outcome::unavailable;
  Position position = 0;  // for appended and duplicate
  friend bool operator==(const MessageResult&, const MessageResult&) = default;
};

// A message the phaser gives back with Outcome::handed_back: `index` into
// the request's messages, and the message as it was taken.
struct HandedBack {
  uint32_t index = 0;
  BucketEntry entry;
  friend bool operator==(const HandedBack&, const HandedBack&) = default;
};

// The answer to one on_append call, every message decided. `handed_back`
// holds one element per result that is Outcome::handed_back, by index.
struct Reply {
  uint64_t token = 0;
  std::vector<MessageResult> results;
  std::vector<HandedBack> handed_back;
};

// Everything a phaser wants done after one input, in this order of meaning:
// persist (append in order; tickets come back via on_persisted), send, reply,
// report (replicas silent for the departure timeout, for the membership
// leader). Sends and replies never depend on the persists of the same output:
// the phaser itself waits for on_persisted before it acks or answers.
struct PhaserOutput {
  std::vector<Persist> persist;
  std::vector<PhaserSend> send;
  std::vector<Reply> reply;
  std::vector<ParticipantId> report;
  std::vector<Fetch> fetch;
  bool repair = false;  // this replica's copy disagrees with its leader's

  bool empty() const {
    return persist.empty() && send.empty() && reply.empty() && report.empty() &&
           fetch.empty() && !repair;
  }
};

}  // namespace coworker::consensus
