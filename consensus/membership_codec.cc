// The membership codec (membership_codec.h): one write_body/read_body pair
// per message and record, dispatched by tag; the Paxos parts go through
// paxos_codec.h's nested encodings.
#include "consensus/membership_codec.h"

#include <utility>
#include <variant>

#include "consensus/paxos_codec.h"

namespace coworker::consensus {

namespace {

// Tags are part of the format: never renumber, only append.
enum class MessageTag : uint8_t {
  paxos = 1,
  arrive_request = 2,
  arrive_answer = 3,
  member_heartbeat = 4,
  member_ack = 5,
  silent_report = 6,
};
static_assert(std::variant_size_v<MembershipMessage> == 6, "a new message needs a tag");

enum class RecordTag : uint8_t {
  paxos = 1,
  identity = 2,
};
static_assert(std::variant_size_v<MembershipRecord> == 2, "a new record needs a tag");

void write_nonce(Writer& out, const Nonce& nonce) {
  out.u64(nonce.data_dir);
  out.u64(nonce.incarnation);
}

Nonce read_nonce(Reader& in) {
  Nonce nonce;
  nonce.data_dir = in.u64();
  nonce.incarnation = in.u64();
  return nonce;
}

void write_params(Writer& out, const ClusterParams& params) {
  out.u64(params.cluster);
  out.u32(params.buckets);
  out.u32(params.replicas);
}

ClusterParams read_params(Reader& in) {
  ClusterParams params;
  params.cluster = in.u64();
  params.buckets = in.u32();
  params.replicas = in.u32();
  return params;
}

// ---- Messages: the fields after the tag ----

constexpr MessageTag tag_of(const Message&) { return MessageTag::paxos; }
constexpr MessageTag tag_of(const ArriveRequest&) { return MessageTag::arrive_request; }
constexpr MessageTag tag_of(const ArriveAnswer&) { return MessageTag::arrive_answer; }
constexpr MessageTag tag_of(const MemberHeartbeat&) { return MessageTag::member_heartbeat; }
constexpr MessageTag tag_of(const MemberAck&) { return MessageTag::member_ack; }
constexpr MessageTag tag_of(const SilentReport&) { return MessageTag::silent_report; }

void write_body(Writer& out, const Message& m) { write_paxos_message(out, m); }
void read_body(Reader& in, Message& m) { m = read_paxos_message(in); }

void write_body(Writer& out, const ArriveRequest& m) {
  // The decoder refuses a longer address; the arrival never makes one.
  COWORKER_ASSERT(m.address.size() <= address_bytes_max);
  write_params(out, m.params);
  out.bytes(m.address);
  write_nonce(out, m.nonce);
}
void read_body(Reader& in, ArriveRequest& m) {
  m.params = read_params(in);
  m.address = in.bytes(address_bytes_max);
  m.nonce = read_nonce(in);
}

void write_body(Writer& out, const ArriveAnswer& m) {
  COWORKER_ASSERT(m.refusal.size() <= value_bytes_max);
  write_nonce(out, m.nonce);
  out.u64(m.id);
  write_snapshot(out, m.snapshot);
  out.bytes(m.refusal);
  out.boolean(m.gone);
  out.u64(m.incarnation);
}
void read_body(Reader& in, ArriveAnswer& m) {
  m.nonce = read_nonce(in);
  m.id = in.u64();
  m.snapshot = read_snapshot(in);
  m.refusal = in.bytes(value_bytes_max);
  m.gone = in.boolean();
  m.incarnation = in.u64();
}

void write_body(Writer& out, const MemberHeartbeat& m) {
  out.u64(m.sent);
  out.u64(m.applied);
  out.boolean(m.recovering);
  out.u64(m.boot);
}
void read_body(Reader& in, MemberHeartbeat& m) {
  m.sent = in.u64();
  m.applied = in.u64();
  m.recovering = in.boolean();
  m.boot = in.u64();
}

void write_body(Writer& out, const MemberAck& m) {
  out.u64(m.sent);
  out.u64(m.slot);
  out.boolean(m.gone);
  out.u64(m.compacted);
  out.u64(m.boot);
}
void read_body(Reader& in, MemberAck& m) {
  m.sent = in.u64();
  m.slot = in.u64();
  m.gone = in.boolean();
  m.compacted = in.u64();
  m.boot = in.u64();
}

void write_body(Writer& out, const SilentReport& m) { out.u64(m.replica); }
void read_body(Reader& in, SilentReport& m) { m.replica = in.u64(); }

// ---- Records ----

constexpr RecordTag tag_of(const PersistRecord&) { return RecordTag::paxos; }
constexpr RecordTag tag_of(const Identity&) { return RecordTag::identity; }

void write_body(Writer& out, const PersistRecord& r) { write_paxos_record(out, r); }
void read_body(Reader& in, PersistRecord& r) { r = read_paxos_record(in); }

void write_body(Writer& out, const Identity& r) {
  out.u64(r.data_dir);
  out.u64(r.incarnation);
  out.u64(r.id);
  out.boolean(r.arriving);
  out.u64(r.remembered.size());
  for (const std::string& address : r.remembered) {
    COWORKER_ASSERT(address.size() <= address_bytes_max);
    out.bytes(address);
  }
  out.u64(r.remembered_cluster);
  out.u64(r.void_through);
}
void read_body(Reader& in, Identity& r) {
  r.data_dir = in.u64();
  r.incarnation = in.u64();
  r.id = in.u64();
  r.arriving = in.boolean();
  const uint64_t n = in.count(1);  // an empty address takes one byte
  for (uint64_t i = 0; i < n && in.ok(); i++) r.remembered.push_back(in.bytes(address_bytes_max));
  r.remembered_cluster = in.u64();
  r.void_through = in.u64();
  if (in.ok() && r.void_through > r.incarnation) in.fail("bad value");
}

// Reads the fields of alternative T into variant V. The variant is built in
// place: a Message or PersistRecord alternative would otherwise be ambiguous.
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

MembershipMessage read_membership_message(Reader& in) {
  const uint8_t tag = in.u8();
  if (!in.ok()) return MembershipMessage{};
  switch (static_cast<MessageTag>(tag)) {
    case MessageTag::paxos: return read_as<Message, MembershipMessage>(in);
    case MessageTag::arrive_request: return read_as<ArriveRequest, MembershipMessage>(in);
    case MessageTag::arrive_answer: return read_as<ArriveAnswer, MembershipMessage>(in);
    case MessageTag::member_heartbeat: return read_as<MemberHeartbeat, MembershipMessage>(in);
    case MessageTag::member_ack: return read_as<MemberAck, MembershipMessage>(in);
    case MessageTag::silent_report: return read_as<SilentReport, MembershipMessage>(in);
  }
  in.fail("unknown tag");
  return MembershipMessage{};
}

MembershipRecord read_membership_record(Reader& in) {
  const uint8_t tag = in.u8();
  if (!in.ok()) return MembershipRecord{};
  switch (static_cast<RecordTag>(tag)) {
    case RecordTag::paxos: return read_as<PersistRecord, MembershipRecord>(in);
    case RecordTag::identity: return read_as<Identity, MembershipRecord>(in);
  }
  in.fail("unknown tag");
  return MembershipRecord{};
}

}  // namespace

void encode(Writer& out, const MembershipMessage& message) {
  out.u8(membership_message_version);
  write_tagged(out, message);
}

std::string encode(const MembershipMessage& message) {
  Writer out;
  encode(out, message);
  return out.take();
}

void encode(Writer& out, const MembershipRecord& record) {
  out.u8(membership_record_version);
  write_tagged(out, record);
}

std::string encode(const MembershipRecord& record) {
  Writer out;
  encode(out, record);
  return out.take();
}

Decoded<MembershipMessage> decode_membership_message(std::string_view bytes) {
  return decode_versioned<MembershipMessage>(bytes, membership_message_version,
                                             read_membership_message);
}

Decoded<MembershipRecord> decode_membership_record(std::string_view bytes) {
  return decode_versioned<MembershipRecord>(bytes, membership_record_version,
                                            read_membership_record);
}

std::string encode_membership_checkpoint(const MembershipDurable& durable) {
  const Durable& paxos = durable.paxos;
  Writer out;
  out.u8(membership_checkpoint_version);
  write_body(out, durable.identity);
  out.u64(paxos.boots);
  write_ballot(out, paxos.promised);
  write_snapshot(out, paxos.snapshot);
  out.u64(paxos.accepted.size());
  for (const auto& [slot, accepted] : paxos.accepted) {
    COWORKER_ASSERT(slot == accepted.slot && slot > paxos.snapshot.slot);
    COWORKER_ASSERT(accepted.ballot <= paxos.promised);
    out.u64(accepted.slot);
    write_ballot(out, accepted.ballot);
    write_entry(out, accepted.entry);
  }
  return out.take();
}

Decoded<MembershipDurable> decode_membership_checkpoint(std::string_view bytes) {
  return decode_versioned<MembershipDurable>(
      bytes, membership_checkpoint_version, [](Reader& in) {
        MembershipDurable durable;
        read_body(in, durable.identity);
        if (in.ok() && durable.identity.data_dir == 0) in.fail("bad value");
        Durable& paxos = durable.paxos;
        paxos.boots = in.u64();
        paxos.promised = read_ballot(in);
        paxos.snapshot = read_snapshot(in);
        constexpr size_t accepted_bytes_min = 4;  // slot, ballot (2), an entry's tag
        const uint64_t n = in.count(accepted_bytes_min);
        for (uint64_t i = 0; i < n && in.ok(); i++) {
          AcceptedEntry accepted;
          accepted.slot = in.u64();
          accepted.ballot = read_ballot(in);
          accepted.entry = read_entry(in);
          const Slot floor =
              paxos.accepted.empty() ? paxos.snapshot.slot : paxos.accepted.rbegin()->first;
          if (accepted.slot <= floor) in.fail("unsorted keys");
          if (accepted.ballot > paxos.promised) in.fail("bad value");
          if (in.ok()) paxos.accepted.emplace(accepted.slot, std::move(accepted));
        }
        // A checkpoint of no id holds no acceptor state (MembershipDurable::apply).
        if (in.ok() && durable.identity.id == no_participant &&
            (paxos.boots != 0 || !paxos.promised.zero() || paxos.snapshot.slot != 0 || n != 0)) {
          in.fail("bad value");
        }
        return durable;
      });
}

}  // namespace coworker::consensus
