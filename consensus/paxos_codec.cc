// The Paxos codec (paxos_codec.h): one write_body/read_body pair per message
// and record, dispatched by tag.
#include "consensus/paxos_codec.h"

#include <utility>
#include <variant>

namespace coworker::consensus {

namespace {

// Tags are part of the format: never renumber, only append.
enum class MessageTag : uint8_t {
  prepare = 1,
  promised = 2,
  reject = 3,
  accept = 4,
  accepted = 5,
  heartbeat = 6,
  heartbeat_ack = 7,
  catch_up = 8,
  learn = 9,
  forward = 10,
  forwarded = 11,
};
static_assert(std::variant_size_v<Message> == 11, "a new message needs a tag");

enum class RecordTag : uint8_t {
  boot = 1,
  promise = 2,
  accept = 3,
  snapshot = 4,
};
static_assert(std::variant_size_v<PersistRecord> == 4, "a new record needs a tag");

// The fewest bytes each encoded value takes (one per varint, per length and
// per count): bounds a count by the bytes left.
constexpr size_t ballot_bytes_min = 2;
constexpr size_t proposal_id_bytes_min = 3;
constexpr size_t entry_bytes_min = proposal_id_bytes_min + 3;
constexpr size_t slot_entry_bytes_min = 1 + entry_bytes_min;
constexpr size_t accepted_entry_bytes_min = 1 + ballot_bytes_min + entry_bytes_min;
constexpr size_t scheduled_bytes_min = 3;

void write_slot_entry(Writer& out, const SlotEntry& slot_entry) {
  out.u64(slot_entry.slot);
  write_entry(out, slot_entry.entry);
}

SlotEntry read_slot_entry(Reader& in) {
  SlotEntry slot_entry;
  slot_entry.slot = in.u64();
  slot_entry.entry = read_entry(in);
  return slot_entry;
}

void write_accepted_entry(Writer& out, const AcceptedEntry& accepted) {
  out.u64(accepted.slot);
  write_ballot(out, accepted.ballot);
  write_entry(out, accepted.entry);
}

AcceptedEntry read_accepted_entry(Reader& in) {
  AcceptedEntry accepted;
  accepted.slot = in.u64();
  accepted.ballot = read_ballot(in);
  accepted.entry = read_entry(in);
  return accepted;
}

// A sequence: the count, then each item.
template <class T, class Write>
void write_all(Writer& out, const std::vector<T>& items, Write&& write) {
  out.u64(items.size());
  for (const T& item : items) write(out, item);
}

template <class T, class Read>
std::vector<T> read_all(Reader& in, size_t item_bytes_min, Read&& read) {
  const uint64_t count = in.count(item_bytes_min);
  std::vector<T> items;
  items.reserve(count);  // at most the bytes left / item_bytes_min
  for (uint64_t i = 0; i < count && in.ok(); i++) items.push_back(read(in));
  return items;
}

// ---- Messages: the fields after the tag ----

constexpr MessageTag tag_of(const Prepare&) { return MessageTag::prepare; }
constexpr MessageTag tag_of(const Promised&) { return MessageTag::promised; }
constexpr MessageTag tag_of(const Reject&) { return MessageTag::reject; }
constexpr MessageTag tag_of(const Accept&) { return MessageTag::accept; }
constexpr MessageTag tag_of(const Accepted&) { return MessageTag::accepted; }
constexpr MessageTag tag_of(const Heartbeat&) { return MessageTag::heartbeat; }
constexpr MessageTag tag_of(const HeartbeatAck&) { return MessageTag::heartbeat_ack; }
constexpr MessageTag tag_of(const CatchUp&) { return MessageTag::catch_up; }
constexpr MessageTag tag_of(const Learn&) { return MessageTag::learn; }
constexpr MessageTag tag_of(const Forward&) { return MessageTag::forward; }
constexpr MessageTag tag_of(const Forwarded&) { return MessageTag::forwarded; }

void write_body(Writer& out, const Prepare& m) {
  write_ballot(out, m.ballot);
  out.u64(m.from);
}
void read_body(Reader& in, Prepare& m) {
  m.ballot = read_ballot(in);
  m.from = in.u64();
}

void write_body(Writer& out, const Promised& m) {
  write_ballot(out, m.ballot);
  out.u64(m.from);
  out.u64(m.compacted_through);
  write_all(out, m.accepted, write_accepted_entry);
}
void read_body(Reader& in, Promised& m) {
  m.ballot = read_ballot(in);
  m.from = in.u64();
  m.compacted_through = in.u64();
  m.accepted = read_all<AcceptedEntry>(in, accepted_entry_bytes_min, read_accepted_entry);
}

void write_body(Writer& out, const Reject& m) {
  write_ballot(out, m.ballot);
  write_ballot(out, m.promised);
  out.u64(m.leader);
}
void read_body(Reader& in, Reject& m) {
  m.ballot = read_ballot(in);
  m.promised = read_ballot(in);
  m.leader = in.u64();
}

void write_body(Writer& out, const Accept& m) {
  write_ballot(out, m.ballot);
  out.u64(m.decided_through);
  write_all(out, m.entries, write_slot_entry);
}
void read_body(Reader& in, Accept& m) {
  m.ballot = read_ballot(in);
  m.decided_through = in.u64();
  m.entries = read_all<SlotEntry>(in, slot_entry_bytes_min, read_slot_entry);
}

void write_body(Writer& out, const Accepted& m) {
  write_ballot(out, m.ballot);
  out.ids(m.slots);
}
void read_body(Reader& in, Accepted& m) {
  m.ballot = read_ballot(in);
  m.slots = in.ids();
}

// Heartbeat and its ack share their fields.
template <class Beat>
void write_beat(Writer& out, const Beat& m) {
  write_ballot(out, m.ballot);
  out.u64(m.sent);
  out.u64(m.decided_through);
}
template <class Beat>
void read_beat(Reader& in, Beat& m) {
  m.ballot = read_ballot(in);
  m.sent = in.u64();
  m.decided_through = in.u64();
}
void write_body(Writer& out, const Heartbeat& m) { write_beat(out, m); }
void read_body(Reader& in, Heartbeat& m) { read_beat(in, m); }
void write_body(Writer& out, const HeartbeatAck& m) { write_beat(out, m); }
void read_body(Reader& in, HeartbeatAck& m) { read_beat(in, m); }

void write_body(Writer& out, const CatchUp& m) { out.u64(m.from); }
void read_body(Reader& in, CatchUp& m) { m.from = in.u64(); }

void write_body(Writer& out, const Learn& m) {
  write_snapshot(out, m.snapshot);
  out.u64(m.first);
  write_all(out, m.entries, write_entry);
}
void read_body(Reader& in, Learn& m) {
  m.snapshot = read_snapshot(in);
  m.first = in.u64();
  m.entries = read_all<Entry>(in, entry_bytes_min, read_entry);
}

void write_body(Writer& out, const Forward& m) { write_all(out, m.entries, write_entry); }
void read_body(Reader& in, Forward& m) {
  m.entries = read_all<Entry>(in, entry_bytes_min, read_entry);
}

void write_body(Writer& out, const Forwarded& m) {
  write_all(out, m.decided, write_proposal_id);
}
void read_body(Reader& in, Forwarded& m) {
  m.decided = read_all<ProposalId>(in, proposal_id_bytes_min, read_proposal_id);
}

// ---- Records ----

constexpr RecordTag tag_of(const PersistBoot&) { return RecordTag::boot; }
constexpr RecordTag tag_of(const PersistPromise&) { return RecordTag::promise; }
constexpr RecordTag tag_of(const PersistAccept&) { return RecordTag::accept; }
constexpr RecordTag tag_of(const PersistSnapshot&) { return RecordTag::snapshot; }

void write_body(Writer& out, const PersistBoot& r) { out.u64(r.boots); }
void read_body(Reader& in, PersistBoot& r) { r.boots = in.u64(); }
void write_body(Writer& out, const PersistPromise& r) { write_ballot(out, r.ballot); }
void read_body(Reader& in, PersistPromise& r) { r.ballot = read_ballot(in); }
void write_body(Writer& out, const PersistAccept& r) { write_accepted_entry(out, r.accepted); }
void read_body(Reader& in, PersistAccept& r) { r.accepted = read_accepted_entry(in); }
void write_body(Writer& out, const PersistSnapshot& r) { write_snapshot(out, r.snapshot); }
void read_body(Reader& in, PersistSnapshot& r) { r.snapshot = read_snapshot(in); }

// Reads the fields of alternative T into variant V.
template <class T, class V>
V read_as(Reader& in) {
  T value;
  read_body(in, value);
  return V{std::in_place_type<T>, std::move(value)};
}

// Writes the tag and the fields of whichever alternative `value` holds.
template <class V>
void write_tagged(Writer& out, const V& value) {
  std::visit(
      [&](const auto& alternative) {
        out.u8(static_cast<uint8_t>(tag_of(alternative)));
        write_body(out, alternative);
      },
      value);
}

}  // namespace

// ---- Nested values ----

void write_ballot(Writer& out, const Ballot& ballot) {
  out.u64(ballot.round);
  out.u64(ballot.node);
}

Ballot read_ballot(Reader& in) {
  Ballot ballot;
  ballot.round = in.u64();
  ballot.node = in.u64();
  return ballot;
}

void write_proposal_id(Writer& out, const ProposalId& id) {
  out.u64(id.proposer);
  out.u64(id.boot);
  out.u64(id.sequence);
}

ProposalId read_proposal_id(Reader& in) {
  ProposalId id;
  id.proposer = in.u64();
  id.boot = in.u64();
  id.sequence = in.u64();
  return id;
}

void write_entry(Writer& out, const Entry& entry) {
  COWORKER_ASSERT(entry.value.size() <= value_bytes_max);
  write_proposal_id(out, entry.id);
  out.bytes(entry.value);
  out.ids(entry.voters);
  out.ids(entry.replaces);
}

Entry read_entry(Reader& in) {
  Entry entry;
  entry.id = read_proposal_id(in);
  entry.value = in.bytes(value_bytes_max);
  entry.voters = in.ids();
  entry.replaces = in.ids();
  return entry;
}

void write_snapshot(Writer& out, const Snapshot& snapshot) {
  COWORKER_ASSERT(snapshot.bytes.size() <= value_bytes_max);
  out.u64(snapshot.slot);
  out.bytes(snapshot.bytes);
  out.u64(snapshot.schedule.size());
  for (const auto& [first, scheduled] : snapshot.schedule) {
    out.u64(first);
    out.u64(scheduled.decided_at);
    out.ids(scheduled.voters);
  }
}

Snapshot read_snapshot(Reader& in) {
  Snapshot snapshot;
  snapshot.slot = in.u64();
  snapshot.bytes = in.bytes(value_bytes_max);
  const uint64_t count = in.count(scheduled_bytes_min);
  for (uint64_t i = 0; i < count && in.ok(); i++) {
    const Slot first = in.u64();
    ScheduledVoters scheduled;
    scheduled.decided_at = in.u64();
    scheduled.voters = in.ids();
    // Strictly increasing keys: a map has one encoding, and a repeated key
    // would be dropped silently.
    if (!snapshot.schedule.empty() && first <= snapshot.schedule.rbegin()->first) {
      in.fail("unsorted keys");
      break;
    }
    snapshot.schedule.emplace_hint(snapshot.schedule.end(), first, std::move(scheduled));
  }
  COWORKER_ASSERT(snapshot.schedule.size() <= count);
  return snapshot;
}

// ---- Messages and records ----

void write_paxos_message(Writer& out, const Message& message) {
  write_tagged(out, message);
}

Message read_paxos_message(Reader& in) {
  const uint8_t tag = in.u8();
  if (!in.ok()) return Message{};
  switch (static_cast<MessageTag>(tag)) {
    case MessageTag::prepare: return read_as<Prepare, Message>(in);
    case MessageTag::promised: return read_as<Promised, Message>(in);
    case MessageTag::reject: return read_as<Reject, Message>(in);
    case MessageTag::accept: return read_as<Accept, Message>(in);
    case MessageTag::accepted: return read_as<Accepted, Message>(in);
    case MessageTag::heartbeat: return read_as<Heartbeat, Message>(in);
    case MessageTag::heartbeat_ack: return read_as<HeartbeatAck, Message>(in);
    case MessageTag::catch_up: return read_as<CatchUp, Message>(in);
    case MessageTag::learn: return read_as<Learn, Message>(in);
    case MessageTag::forward: return read_as<Forward, Message>(in);
    case MessageTag::forwarded: return read_as<Forwarded, Message>(in);
  }
  in.fail("unknown tag");
  return Message{};
}

void write_paxos_record(Writer& out, const PersistRecord& record) {
  write_tagged(out, record);
}

PersistRecord read_paxos_record(Reader& in) {
  const uint8_t tag = in.u8();
  if (!in.ok()) return PersistRecord{};
  switch (static_cast<RecordTag>(tag)) {
    case RecordTag::boot: return read_as<PersistBoot, PersistRecord>(in);
    case RecordTag::promise: return read_as<PersistPromise, PersistRecord>(in);
    case RecordTag::accept: return read_as<PersistAccept, PersistRecord>(in);
    case RecordTag::snapshot: return read_as<PersistSnapshot, PersistRecord>(in);
  }
  in.fail("unknown tag");
  return PersistRecord{};
}

// ---- Top level ----

void encode(Writer& out, const Message& message) {
  out.u8(paxos_format_version);
  write_paxos_message(out, message);
}

std::string encode(const Message& message) {
  Writer out;
  encode(out, message);
  return out.take();
}

void encode(Writer& out, const PersistRecord& record) {
  out.u8(paxos_format_version);
  write_paxos_record(out, record);
}

std::string encode(const PersistRecord& record) {
  Writer out;
  encode(out, record);
  return out.take();
}

Decoded<Message> decode_paxos_message(std::string_view bytes) {
  return decode_versioned<Message>(bytes, paxos_format_version, read_paxos_message);
}

Decoded<PersistRecord> decode_paxos_record(std::string_view bytes) {
  return decode_versioned<PersistRecord>(bytes, paxos_format_version, read_paxos_record);
}

}  // namespace coworker::consensus
