// The byte codec of Paxos's peer messages (Message) and durable records
// (PersistRecord), over consensus/codec.h's Writer and Reader.
//
// Pure functions, any core: the peer transport encodes what Output::send
// holds and decodes what arrives; the log store encodes Output::persist and
// decodes it at recovery. Decoding fails closed with a reason (codec.h) and
// checks form only: what a message means (a ballot from its sender, a slot
// in the window) is for Paxos to judge.
//
// Format, version 1 (every integer a minimal LEB128 varint, codec.h):
//
//   message  = version(0x01) tag fields        record = version(0x01) tag fields
//
//   tag  message        fields
//   1    Prepare        ballot from
//   2    Promised       ballot from compacted_through n accepted_entry*n
//   3    Reject         ballot promised leader
//   4    Accept         ballot decided_through n slot_entry*n
//   5    Accepted       ballot n slot*n
//   6    Heartbeat      ballot sent decided_through
//   7    HeartbeatAck   ballot sent decided_through
//   8    CatchUp        from
//   9    Learn          snapshot first n entry*n
//   10   Forward        n entry*n
//   11   Forwarded      n proposal_id*n
//
//   tag  record           fields
//   1    PersistBoot      boots
//   2    PersistPromise   ballot
//   3    PersistAccept    accepted_entry
//   4    PersistSnapshot  snapshot
//
//   ballot         = round node
//   proposal_id    = proposer boot sequence
//   entry          = proposal_id len value(raw bytes, <= 64 MiB) n voter*n n replaced*n
//   slot_entry     = slot entry
//   accepted_entry = slot ballot entry
//   snapshot       = slot len bytes(<= 64 MiB) n (first decided_at n voter*n)*n
//                    (schedule keys strictly increasing)
//
// Tags are part of the format: never renumber, only append. Tag 0 is never
// used, so zeroed bytes never decode.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "consensus/codec.h"
#include "consensus/paxos_types.h"

namespace coworker::consensus {

constexpr uint8_t paxos_format_version = 1;

// Top level: the version byte, the tag, the fields.
void encode(Writer& out, const Message& message);
std::string encode(const Message& message);
void encode(Writer& out, const PersistRecord& record);
std::string encode(const PersistRecord& record);

Decoded<Message> decode_paxos_message(std::string_view bytes);
Decoded<PersistRecord> decode_paxos_record(std::string_view bytes);

// Nested values, without a version byte (the membership codec carries Paxos
// messages, records and snapshots inside its own). Each read_ returns a zero
// value once the reader failed: check Reader::ok().
void write_ballot(Writer& out, const Ballot& ballot);
Ballot read_ballot(Reader& in);
void write_proposal_id(Writer& out, const ProposalId& id);
ProposalId read_proposal_id(Reader& in);
void write_entry(Writer& out, const Entry& entry);
Entry read_entry(Reader& in);
void write_snapshot(Writer& out, const Snapshot& snapshot);
Snapshot read_snapshot(Reader& in);

// The tag and the fields.
void write_paxos_message(Writer& out, const Message& message);
Message read_paxos_message(Reader& in);
void write_paxos_record(Writer& out, const PersistRecord& record);
PersistRecord read_paxos_record(Reader& in);

}  // namespace coworker::consensus
