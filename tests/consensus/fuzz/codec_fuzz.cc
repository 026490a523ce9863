// libFuzzer target for the consensus codecs: every input goes to each of the
// six decoders (paxos, membership and phaser; messages and records).
//
// Oracles: a decoder never reads past the input or crashes (ASan, UBSan); a
// failure carries a reason and no value; a success carries a value and no
// reason, and since the format has one encoding per value (minimal varints,
// 0/1 booleans, increasing keys), re-encoding the value gives back exactly
// the input, which decodes again. Any mismatch traps.
//
// Input: the bytes to decode, whole (no header: the version byte and the tag
// are the fuzzer's to find). A Write with entries and a matching CRC32C is
// more than the fuzzer finds by mutation in its 30 s, so an input that
// starts with 0xff (no decoder's version) also builds one: the rest of the
// input gives its fields, the checksum is computed, and the encoding, as a
// message and as a record, must decode back; then one byte of it, chosen by
// the input, is changed and the result goes through the oracles above.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "consensus/codec.h"
#include "consensus/membership_codec.h"
#include "consensus/paxos_codec.h"
#include "consensus/phaser_codec.h"

using namespace coworker::consensus;

namespace {

// Records both ways: as from a peer, and as from the log (the payload
// checksum held; the Write's is not recomputed).
Decoded<PhaserRecord> verified_record(std::string_view bytes) {
  return decode_phaser_record(bytes, WriteChecksum::verify);
}
Decoded<PhaserRecord> covered_record(std::string_view bytes) {
  return decode_phaser_record(bytes, WriteChecksum::covered);
}

template <class T, class Decode>
void check(std::string_view input, Decode decode) {
  const Decoded<T> decoded = decode(input);
  if (!decoded.value) {
    if (decoded.error == nullptr) __builtin_trap();  // a failure without a reason
    return;
  }
  if (decoded.error != nullptr) __builtin_trap();  // a value with a reason
  const std::string bytes = encode(*decoded.value);
  if (bytes != input) __builtin_trap();  // not the one encoding of its value
  const Decoded<T> again = decode(bytes);
  if (!again.value || again.value->index() != decoded.value->index()) __builtin_trap();
  if (encode(*again.value) != bytes) __builtin_trap();
}

// A register read in place (EntryReader) is the register read owned, field
// for field; whatever else it refuses.
void check_register_view(std::string_view input) {
  std::vector<EntryView> entries;
  const Decoded<Write> view = decode_register_view(input, entries);
  const Decoded<PhaserRecord> owned = covered_record(input);
  const auto* r = owned.value ? std::get_if<RegisterRecord>(&*owned.value) : nullptr;
  if (!view.value) {
    if (view.error == nullptr || r != nullptr) __builtin_trap();
    return;
  }
  if (view.error != nullptr || r == nullptr) __builtin_trap();
  const Write& w = *r->write;
  const Write& head = *view.value;
  if (head.bucket != w.bucket || head.promise != w.promise || head.number != w.number ||
      head.first != w.first || head.time != w.time || head.expire_before != w.expire_before ||
      head.checksum != w.checksum || head.commit != w.commit || !head.entries.empty()) {
    __builtin_trap();
  }
  if (entries.size() != w.entries.size()) __builtin_trap();
  for (size_t i = 0; i < w.entries.size(); i++) {
    if (entries[i].owned() != w.entries[i]) __builtin_trap();
  }
}

// Builds a write from the input's varints and byte strings (Reader's
// primitives), checks it round trips, then decodes one changed byte of it.
void check_built_write(std::string_view input) {
  Reader in(input);
  auto write = std::make_shared<Write>();
  write->bucket = static_cast<uint32_t>(in.u64());
  write->promise = Promise{in.u64(), static_cast<uint32_t>(in.u64())};
  write->number = in.u64();
  write->first = in.u64();
  write->time = in.u64();
  write->expire_before = write->time - std::min(write->time, in.u64());
  const uint64_t count = in.u64() % 8;
  for (uint64_t i = 0; i < count && in.ok(); i++) {
    // A valid entry: the counter below 2^63 (its low bit picks a wrap other
    // than 2^53), the series below the wrap when there is a connection.
    std::string identifier = in.bytes();
    ConnectionId connection{in.u64(), 0, series_wrap_default};
    const uint64_t counter = in.u64();
    connection.counter = counter >> 1;
    if ((counter & 1) != 0) {
      connection.wrap = series_wrap_min + connection.counter % (series_wrap_default - series_wrap_min);
    }
    uint64_t series = in.u64();
    if (connection.valid()) series %= connection.wrap;
    const uint64_t window = in.u64();
    write->entries.push_back(BucketEntry{std::move(identifier), connection, series, window, in.bytes()});
  }
  write->commit = CommitMark{in.u64(), in.u64(), static_cast<uint32_t>(in.u64())};
  const uint64_t at = in.u64();
  const uint8_t value = in.u8();
  if (!in.ok() || write->first > UINT64_MAX - write->entries.size()) return;
  write->checksum = checksum_of(*write);
  for (std::string bytes :
       {encode(PhaserMessage{WritePtr(write)}), encode(PhaserRecord{RegisterRecord{write}})}) {
    const bool message = bytes[1] == 1;
    const auto decoded_message = decode_phaser_message(bytes);
    const auto decoded_record = decode_phaser_record(bytes);
    if (message ? !decoded_message.value : !decoded_record.value) __builtin_trap();
    if ((message ? encode(*decoded_message.value) : encode(*decoded_record.value)) != bytes) {
      __builtin_trap();
    }
    bytes[at % bytes.size()] = static_cast<char>(value);
    check<PhaserMessage>(bytes, decode_phaser_message);
    check<PhaserRecord>(bytes, verified_record);
    check<PhaserRecord>(bytes, covered_record);
    check_register_view(bytes);
  }
}

}  // namespace

// A membership checkpoint (not a variant): decoded, it re-encodes to the input.
void check_membership_checkpoint(std::string_view input) {
  const Decoded<MembershipDurable> decoded = decode_membership_checkpoint(input);
  if (!decoded.value) {
    if (decoded.error == nullptr) __builtin_trap();
    return;
  }
  if (encode_membership_checkpoint(*decoded.value) != input) __builtin_trap();
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  check<Message>(input, decode_paxos_message);
  check<PersistRecord>(input, decode_paxos_record);
  check<MembershipMessage>(input, decode_membership_message);
  check<MembershipRecord>(input, decode_membership_record);
  check<PhaserMessage>(input, decode_phaser_message);
  check<PhaserRecord>(input, verified_record);
  check<PhaserRecord>(input, covered_record);
  check_register_view(input);
  check_membership_checkpoint(input);
  if (size > 0 && data[0] == 0xff) check_built_write(input.substr(1));
  return 0;
}
