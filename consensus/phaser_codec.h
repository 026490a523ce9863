// The byte codec of the phaser's peer messages (PhaserMessage) and durable
// records (PhaserRecord), over consensus/codec.h.
//
// Pure functions, any core: the peer transport encodes what
// PhaserOutput::send holds and decodes what arrives; the log store encodes
// PhaserOutput::persist and decodes it at recovery. Decoding fails closed
// with a reason (codec.h) and checks form only, with one exception: a
// decoded Write's checksum is recomputed (checksum_of) and a mismatch fails
// with "checksum mismatch", so a corrupted write never reaches a phaser.
//
// Format, version 3 (every integer a minimal LEB128 varint, codec.h).
// Version 2 added a write's time and expire_before, and the dedup table's
// times and watermarks (issue 13); version 3 a connection's series wrap in
// each entry (issue 15). No release wrote versions 1 or 2; they are not
// read.
//
//   message = version(0x03) tag fields          record = version(0x03) tag fields
//
//   tag  message       fields
//   1    Write         write
//   2    Ack           bucket(u32) promise number end commit_only(0/1) from
//   3    Nack          bucket(u32) promise from
//   4    CommitNotice  bucket(u32) promise commit_mark
//   5    Catchup       bucket(u32) promise n write*n
//   6    CatchupAck    bucket(u32) promise end from
//   7    CatchupSnapshot bucket(u32) promise commit_end commit_mark last_commit_first table
//
//   tag  record          fields
//   1    PromiseRecord   promise
//   2    RegisterRecord  write
//   3    CommitRecord    commit_mark first
//   4    CheckpointRecord promise commit_end commit_mark last_commit_first table
//                        (table: DedupTable::encode, consensus/dedup.h)
//   5    ResetRecord     promise
//   6    RepairRecord    promise
//
//   write        = bucket(u32) promise number first time expire_before
//                  n bucket_entry*n checksum(4) commit_mark
//                  (first + n must not overflow; expire_before <= time)
//   bucket_entry = len identifier issuer counter2 [wrap] series window len body(<= 64 MiB)
//                  (identifier and body are raw bytes; counter2 = counter * 2 + 1
//                  when the connection's wrap is not 2^53, then that wrap follows,
//                  in [2^32, 2^53); series < wrap when issuer != 0)
//   commit_mark  = end number checksum(4)
//   checksum(4)  = CRC32C, four bytes little-endian (a varint would take five)
//   promise      = slot counter(u32)
//
// Tags are part of the format: never renumber, only append. Tag 0 is never
// used, so zeroed bytes never decode. A WritePtr to encode is never null.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "consensus/codec.h"
#include "consensus/phaser_messages.h"

namespace coworker::consensus {

// 4 (2026-12-06): a committed state carries its newest write with entries,
// a Catchup an offer to discard, a CatchupAck an offer, and the reset
// record (phaser.h step 9f); a checkpoint record says whether a register
// follows it.
// 5 (2026-12-06): a write carries its prior, the checksum of the newest
// write with entries below it (checksums chain).
// 6 (2026-12-06): the repair record (per-bucket repair, phaser.h step 9g).
// 7 (2026-12-06): a CatchupAck names its copy's life (phaser.h step 9h).
constexpr uint8_t phaser_format_version = 7;

// Top level: the version byte, the tag, the fields.
void encode(Writer& out, const PhaserMessage& message);
std::string encode(const PhaserMessage& message);
void encode(Writer& out, const PhaserRecord& record);
std::string encode(const PhaserRecord& record);

Decoded<PhaserMessage> decode_phaser_message(std::string_view bytes);

// encode(message), remembering the last Write it encoded: a leader sends
// each Write to every other member in turn (Phaser::send_to_members), and
// encoding it again per replica (every entry) was a tenth of a leader's
// engine instructions with windows (bench/engine.cc). Holds that Write
// until the next one is encoded (at most a write's 1 MiB per encoder).
class MessageEncoder {
 public:
  std::string encode(const PhaserMessage& message);

 private:
  WritePtr _write;
  std::string _bytes;  // encode(_write)
};

// Whether decoding a Write recomputes its checksum (phaser.h checksum_of).
enum class WriteChecksum : uint8_t {
  verify,   // bytes from a peer, or of unknown origin: recomputed, a mismatch fails
  covered,  // a log record whose payload checksum held (record.h): the bytes are
            // the ones this participant encoded from a verified Write, so the
            // recomputation (a second pass over every body) is skipped
};
Decoded<PhaserRecord> decode_phaser_record(std::string_view bytes,
                                           WriteChecksum check = WriteChecksum::verify);

// A register record read in place (bucket/entry_reader.h): its write's
// fields (with no entries), its entries appended to `entries` as views into
// `bytes` (on a failure, some may have been). Only for a log record whose
// payload checksum held (WriteChecksum::covered: the write's own checksum
// is not recomputed).
Decoded<Write> decode_register_view(std::string_view bytes, std::vector<EntryView>& entries);

// One bucket_entry, for other codecs that carry client messages (the
// server's hops); read in place, or owned (the same parse, then copied).
void write_bucket_entry(Writer& out, const BucketEntry& entry);
BucketEntry read_bucket_entry(Reader& in);
EntryView read_entry_view(Reader& in);

}  // namespace coworker::consensus
