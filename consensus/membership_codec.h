// The byte codec of the membership layer's peer messages (MembershipMessage)
// and durable records (MembershipRecord), over consensus/codec.h; the Paxos
// messages, records and snapshots inside them use paxos_codec.h's nested
// encodings.
//
// Pure functions, any core: the peer transport and the log store call them.
// The envelope (sender and addressee ids, the sender's address) is the
// transport's, not part of these bytes. Decoding fails closed with a reason
// (codec.h) and checks form only.
//
// Format (every integer a minimal LEB128 varint, codec.h); messages and
// records carry their own version byte (membership_message_version,
// membership_record_version), so a message change leaves the records on
// disk readable. A decoder accepts only its own version ("bad version"
// otherwise): a peer of another format is refused, never misread.
//
//   message = version tag fields          record = version tag fields
//
//   tag  message          fields
//   1    Message (Paxos)  paxos_tag paxos_fields   (paxos_codec.h, no version byte)
//   2    ArriveRequest    params len address(<= 1 KiB) nonce
//   3    ArriveAnswer     nonce id snapshot(paxos_codec.h) len refusal gone(0/1) incarnation
//   4    MemberHeartbeat  sent applied recovering(0/1) boot   (boot: since 3)
//   5    MemberAck        sent slot gone(0/1) compacted boot  (boot: since 3)
//   6    SilentReport     replica
//
//   tag  record                 fields
//   1    PersistRecord (Paxos)  paxos_tag paxos_fields  (paxos_codec.h, no version byte)
//   2    Identity               data_dir incarnation id arriving(0/1)
//                               n (len address(<= 1 KiB))*n cluster
//                               void_through
//                               (remembered, remembered_cluster: since 2;
//                               void_through: since 3)
//
//   params = cluster buckets(u32) replicas(u32)     nonce = data_dir incarnation
//
// Tags are part of the format: never renumber, only append. Tag 0 is never
// used, so zeroed bytes never decode.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "consensus/codec.h"
#include "consensus/membership_messages.h"

namespace coworker::consensus {

// Up to version 2 (Identity.remembered) messages and records shared one
// version; messages went on to 3 (MemberHeartbeat.boot, MemberAck.boot),
// records to 3 (Identity.void_through).
constexpr uint8_t membership_record_version = 3;
constexpr uint8_t membership_message_version = 3;

// Top level: the version byte, the tag, the fields. (Pass the variant: a
// bare Paxos alternative converts to both Message and MembershipMessage.)
void encode(Writer& out, const MembershipMessage& message);
std::string encode(const MembershipMessage& message);
void encode(Writer& out, const MembershipRecord& record);
std::string encode(const MembershipRecord& record);

Decoded<MembershipMessage> decode_membership_message(std::string_view bytes);

// A checkpoint of the whole durable state (the log store's, core 0,
// DESIGN §6): it replaces what the records before it folded to.
//   checkpoint = version(2) identity boots promised(ballot) snapshot
//                n (slot ballot entry)*n      (slots increasing, above the
//                snapshot's; ballots not above promised; no id: no state)
constexpr uint8_t membership_checkpoint_version = 2;  // 2: Identity.void_through
std::string encode_membership_checkpoint(const MembershipDurable& durable);
Decoded<MembershipDurable> decode_membership_checkpoint(std::string_view bytes);
Decoded<MembershipRecord> decode_membership_record(std::string_view bytes);

}  // namespace coworker::consensus
