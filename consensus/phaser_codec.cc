// The phaser codec (phaser_codec.h): one write_body/read_body pair per
// message and record, dispatched by tag; a decoded Write's checksum checked.
#include "consensus/phaser_codec.h"

#include <cstring>
#include <memory>
#include <optional>
#include <utility>
#include <variant>

#include "consensus/dedup.h"

namespace coworker::consensus {

namespace {

// Tags are part of the format: never renumber, only append.
enum class MessageTag : uint8_t {
  write = 1,
  ack = 2,
  nack = 3,
  commit_notice = 4,
  catchup = 5,
  catchup_ack = 6,
  catchup_snapshot = 7,
};
static_assert(std::variant_size_v<PhaserMessage> == 7, "a new message needs a tag");

enum class RecordTag : uint8_t {
  promise = 1,
  register_write = 2,
  commit = 3,
  checkpoint = 4,
  reset = 5,
  repair = 6,
};
static_assert(std::variant_size_v<PhaserRecord> == 6, "a new record needs a tag");

// identifier length, issuer, counter, series, window, body length.
constexpr size_t bucket_entry_bytes_min = 6;

void write_mark(Writer& out, const CommitMark& mark) {
  out.u64(mark.end);
  out.u64(mark.number);
  out.fixed32(mark.checksum);
}

CommitMark read_mark(Reader& in) {
  CommitMark mark;
  mark.end = in.u64();
  mark.number = in.u64();
  mark.checksum = in.fixed32();
  return mark;
}

// A flag byte, then the mark if set.
void write_optional_mark(Writer& out, const std::optional<CommitMark>& mark) {
  out.boolean(mark.has_value());
  if (mark) write_mark(out, *mark);
}

std::optional<CommitMark> read_optional_mark(Reader& in) {
  if (!in.boolean()) return std::nullopt;
  return read_mark(in);
}

// The checksum is not recomputed here: the phaser computed it when it made
// the write (a pass over up to a megabyte per replica sent to), and every
// decoder checks it.
void write_write(Writer& out, const WritePtr& write) {
  COWORKER_ASSERT(write != nullptr);
  // Room for the whole write first: the fixed fields alone outgrow a short
  // string, so reserving after them cost a second allocation per encoding.
  size_t bytes = 128;  // the fixed fields and the framing, generously
  for (const BucketEntry& entry : write->entries) {
    bytes += entry.identifier.size() + entry.body.size() + 48;  // varints of an entry
  }
  out.reserve(bytes);
  out.u32(write->bucket);
  write_promise(out, write->promise);
  out.u64(write->number);
  out.u64(write->first);
  out.u64(write->time);
  out.u64(write->expire_before);
  out.u64(write->entries.size());
  for (const BucketEntry& entry : write->entries) write_bucket_entry(out, entry);
  out.fixed32(write->prior);
  out.fixed32(write->checksum);
  write_mark(out, write->commit);
}

// A write's fields into `write` and its entries appended to `entries`: the
// write's own (owned) or views into the bytes (in place).
template <class Entry>
void read_write_into(Reader& in, Write& write, std::vector<Entry>& entries) {
  write.bucket = in.u32();
  write.promise = read_promise(in);
  write.number = in.u64();
  write.first = in.u64();
  write.time = in.u64();
  write.expire_before = in.u64();
  if (write.expire_before > write.time) in.fail("bad value");
  const uint64_t count = in.count(bucket_entry_bytes_min);
  // end() = first + entries: it must not wrap.
  if (in.ok() && count > UINT64_MAX - write.first) in.fail("position overflow");
  const size_t before = entries.size();
  // At most the bytes left / bucket_entry_bytes_min. Appending to a vector
  // that holds some: its own growth (an exact reserve each time would copy
  // it every call).
  if (before == 0) entries.reserve(count);
  for (uint64_t i = 0; i < count && in.ok(); i++) {
    if constexpr (std::is_same_v<Entry, EntryView>) {
      entries.push_back(read_entry_view(in));
    } else {
      entries.push_back(read_bucket_entry(in));
    }
  }
  write.prior = in.fixed32();
  write.checksum = in.fixed32();
  write.commit = read_mark(in);
  if (in.ok()) COWORKER_ASSERT(entries.size() == before + count);
}

WritePtr read_write(Reader& in, WriteChecksum check = WriteChecksum::verify) {
  auto write = std::make_shared<Write>();
  read_write_into(in, *write, write->entries);
  // A corrupted write must never reach a phaser (paired with the checksum
  // the phaser computed when it made the write).
  if (in.ok() && check == WriteChecksum::verify &&
      checksum_of(*write) != write->checksum) {
    in.fail("checksum mismatch");
  }
  return write;
}

// ---- Messages: the fields after the tag ----

constexpr MessageTag tag_of(const WritePtr&) { return MessageTag::write; }
constexpr MessageTag tag_of(const Ack&) { return MessageTag::ack; }
constexpr MessageTag tag_of(const Nack&) { return MessageTag::nack; }
constexpr MessageTag tag_of(const CommitNotice&) { return MessageTag::commit_notice; }
constexpr MessageTag tag_of(const Catchup&) { return MessageTag::catchup; }
constexpr MessageTag tag_of(const CatchupAck&) { return MessageTag::catchup_ack; }

void write_body(Writer& out, const WritePtr& m) { write_write(out, m); }
void read_body(Reader& in, WritePtr& m) { m = read_write(in); }

void write_body(Writer& out, const Ack& m) {
  out.u32(m.bucket);
  write_promise(out, m.promise);
  out.u64(m.number);
  out.u64(m.end);
  out.boolean(m.commit_only);
  out.u64(m.from);
}
void read_body(Reader& in, Ack& m) {
  m.bucket = in.u32();
  m.promise = read_promise(in);
  m.number = in.u64();
  m.end = in.u64();
  m.commit_only = in.boolean();
  m.from = in.u64();
}

void write_body(Writer& out, const Nack& m) {
  out.u32(m.bucket);
  write_promise(out, m.promise);
  out.u64(m.from);
}
void read_body(Reader& in, Nack& m) {
  m.bucket = in.u32();
  m.promise = read_promise(in);
  m.from = in.u64();
}

void write_body(Writer& out, const CommitNotice& m) {
  out.u32(m.bucket);
  write_promise(out, m.promise);
  write_mark(out, m.commit);
}
void read_body(Reader& in, CommitNotice& m) {
  m.bucket = in.u32();
  m.promise = read_promise(in);
  m.commit = read_mark(in);
}

// The smallest write: bucket, promise (2), number, first, count, prior(4),
// checksum(4), mark (end, number, checksum(4)).
constexpr size_t write_bytes_min = 18;

void write_body(Writer& out, const Catchup& m) {
  out.u32(m.bucket);
  write_promise(out, m.promise);
  out.u64(m.writes.size());
  for (const WritePtr& write : m.writes) write_write(out, write);
  write_optional_mark(out, m.discard);
}
void read_body(Reader& in, Catchup& m) {
  m.bucket = in.u32();
  m.promise = read_promise(in);
  const uint64_t count = in.count(write_bytes_min);
  m.writes.reserve(count);
  for (uint64_t i = 0; i < count && in.ok(); i++) m.writes.push_back(read_write(in));
  m.discard = read_optional_mark(in);
}

void write_body(Writer& out, const CatchupAck& m) {
  out.u32(m.bucket);
  write_promise(out, m.promise);
  out.u64(m.end);
  out.u64(m.from);
  write_optional_mark(out, m.offer);
  out.u32(m.life.boot);
  out.u32(m.life.resets);
}
void read_body(Reader& in, CatchupAck& m) {
  m.bucket = in.u32();
  m.promise = read_promise(in);
  m.end = in.u64();
  m.from = in.u64();
  m.offer = read_optional_mark(in);
  m.life.boot = in.u32();
  m.life.resets = in.u32();
  if (in.ok() && m.offer && m.offer->end != m.end) in.fail("bad value");
}

// The committed state a checkpoint and a snapshot carry, after the promise:
// commit_end commit_mark last_commit_first filled_mark table.
void write_state(Writer& out, const CommittedState& m) {
  COWORKER_ASSERT(m.dedup != nullptr);
  write_promise(out, m.promise);
  out.u64(m.commit_end);
  write_mark(out, m.last_commit);
  out.u64(m.last_commit_first);
  write_mark(out, m.last_filled);
  m.dedup->encode(out);
}
void read_state(Reader& in, CommittedState& m) {
  m.promise = read_promise(in);
  m.commit_end = in.u64();
  m.last_commit = read_mark(in);
  m.last_commit_first = in.u64();
  m.last_filled = read_mark(in);
  if (in.ok() && (m.last_commit.end != m.commit_end || m.last_commit_first > m.commit_end ||
                  m.last_filled.end != m.commit_end)) {
    in.fail("bad value");
  }
  m.dedup = std::make_shared<const DedupTable>(DedupTable::decode(in));
}

constexpr MessageTag tag_of(const CatchupSnapshot&) { return MessageTag::catchup_snapshot; }
void write_body(Writer& out, const CatchupSnapshot& m) {
  out.u32(m.bucket);
  write_state(out, m.state);
}
void read_body(Reader& in, CatchupSnapshot& m) {
  m.bucket = in.u32();
  read_state(in, m.state);
}

// ---- Records ----

constexpr RecordTag tag_of(const PromiseRecord&) { return RecordTag::promise; }
constexpr RecordTag tag_of(const RegisterRecord&) { return RecordTag::register_write; }
constexpr RecordTag tag_of(const CommitRecord&) { return RecordTag::commit; }

void write_body(Writer& out, const PromiseRecord& r) { write_promise(out, r.promise); }
void read_body(Reader& in, PromiseRecord& r) { r.promise = read_promise(in); }
void write_body(Writer& out, const RegisterRecord& r) { write_write(out, r.write); }
void write_body(Writer& out, const CommitRecord& r) {
  write_mark(out, r.mark);
  out.u64(r.first);
}
void read_body(Reader& in, CommitRecord& r) {
  r.mark = read_mark(in);
  r.first = in.u64();
}

constexpr RecordTag tag_of(const ResetRecord&) { return RecordTag::reset; }
void write_body(Writer& out, const ResetRecord& r) { write_promise(out, r.promise); }
void read_body(Reader& in, ResetRecord& r) { r.promise = read_promise(in); }

constexpr RecordTag tag_of(const RepairRecord&) { return RecordTag::repair; }
void write_body(Writer& out, const RepairRecord& r) { write_promise(out, r.promise); }
void read_body(Reader& in, RepairRecord& r) { r.promise = read_promise(in); }

constexpr RecordTag tag_of(const CheckpointRecord&) { return RecordTag::checkpoint; }
void write_body(Writer& out, const CheckpointRecord& r) {
  write_state(out, r.state);
  out.boolean(r.register_follows);
}
void read_body(Reader& in, CheckpointRecord& r) {
  read_state(in, r.state);
  r.register_follows = in.boolean();
}

// Reads the fields of alternative T into variant V (built in place: a
// WritePtr or a Promise converts to more than one alternative).
template <class T, class V>
V read_as(Reader& in) {
  T value;
  read_body(in, value);
  return V{std::in_place_type<T>, std::move(value)};
}

PhaserMessage read_phaser_message(Reader& in) {
  const uint8_t tag = in.u8();
  if (!in.ok()) return PhaserMessage{};
  switch (static_cast<MessageTag>(tag)) {
    case MessageTag::write: return read_as<WritePtr, PhaserMessage>(in);
    case MessageTag::ack: return read_as<Ack, PhaserMessage>(in);
    case MessageTag::nack: return read_as<Nack, PhaserMessage>(in);
    case MessageTag::commit_notice: return read_as<CommitNotice, PhaserMessage>(in);
    case MessageTag::catchup: return read_as<Catchup, PhaserMessage>(in);
    case MessageTag::catchup_ack: return read_as<CatchupAck, PhaserMessage>(in);
    case MessageTag::catchup_snapshot: return read_as<CatchupSnapshot, PhaserMessage>(in);
  }
  in.fail("unknown tag");
  return PhaserMessage{};
}

PhaserRecord read_phaser_record(Reader& in, WriteChecksum check) {
  const uint8_t tag = in.u8();
  if (!in.ok()) return PhaserRecord{};
  switch (static_cast<RecordTag>(tag)) {
    case RecordTag::promise: return read_as<PromiseRecord, PhaserRecord>(in);
    case RecordTag::register_write:
      return PhaserRecord{std::in_place_type<RegisterRecord>,
                          RegisterRecord{read_write(in, check)}};
    case RecordTag::commit: return read_as<CommitRecord, PhaserRecord>(in);
    case RecordTag::checkpoint: return read_as<CheckpointRecord, PhaserRecord>(in);
    case RecordTag::reset: return read_as<ResetRecord, PhaserRecord>(in);
    case RecordTag::repair: return read_as<RepairRecord, PhaserRecord>(in);
  }
  in.fail("unknown tag");
  return PhaserRecord{};
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

void write_bucket_entry(Writer& out, const BucketEntry& entry) {
  COWORKER_ASSERT(entry.identifier.size() <= value_bytes_max);
  COWORKER_ASSERT(entry.body.size() <= value_bytes_max);
  COWORKER_ASSERT(entry.connection.counter < (uint64_t{1} << 63));
  // counter * 2 + (wrap other than the default), then that wrap.
  const bool wrapped = entry.connection.wrap != series_wrap_default;
  // Everything before the body built on the stack and appended once, then
  // the body: an append per field was half the cost of encoding an entry
  // (callgrind, bench/engine.cc). A long identifier goes on its own.
  constexpr size_t identifier_inline_max = 64;
  char head[identifier_inline_max + 7 * Writer::varint_bytes_max];
  size_t n = Writer::varint(head, entry.identifier.size());
  if (entry.identifier.size() <= identifier_inline_max) {
    std::memcpy(head + n, entry.identifier.data(), entry.identifier.size());
    n += entry.identifier.size();
  } else {
    out.raw(std::string_view(head, n));
    out.raw(entry.identifier);
    n = 0;
  }
  n += Writer::varint(head + n, entry.connection.issuer);
  n += Writer::varint(head + n, entry.connection.counter << 1 | (wrapped ? 1 : 0));
  if (wrapped) n += Writer::varint(head + n, entry.connection.wrap);
  n += Writer::varint(head + n, entry.series);
  n += Writer::varint(head + n, entry.window);
  n += Writer::varint(head + n, entry.body.size());
  out.raw(std::string_view(head, n));
  out.raw(entry.body);
}

BucketEntry read_bucket_entry(Reader& in) { return read_entry_view(in).owned(); }

EntryView read_entry_view(Reader& in) {
  EntryView entry;
  entry.identifier = in.bytes_view(value_bytes_max);
  entry.connection.issuer = in.u64();
  const uint64_t counter = in.u64();
  entry.connection.counter = counter >> 1;
  if ((counter & 1) != 0) {
    entry.connection.wrap = in.u64();
    // Only a wrap other than the default is written, within DESIGN §3's range.
    if (in.ok() && (entry.connection.wrap < series_wrap_min ||
                    entry.connection.wrap >= series_wrap_default)) {
      in.fail("bad value");
    }
  }
  entry.series = in.u64();
  // A series lies below its connection's wrap.
  if (in.ok() && entry.connection.valid() && entry.series >= entry.connection.wrap) {
    in.fail("bad value");
  }
  entry.window = in.u64();
  entry.body = in.bytes_view(value_bytes_max);
  return entry;
}


void encode(Writer& out, const PhaserMessage& message) {
  out.u8(phaser_format_version);
  write_tagged(out, message);
}

std::string encode(const PhaserMessage& message) {
  Writer out;
  encode(out, message);
  return out.take();
}

void encode(Writer& out, const PhaserRecord& record) {
  out.u8(phaser_format_version);
  write_tagged(out, record);
}

std::string encode(const PhaserRecord& record) {
  Writer out;
  encode(out, record);
  return out.take();
}

std::string MessageEncoder::encode(const PhaserMessage& message) {
  const auto* write = std::get_if<WritePtr>(&message);
  if (write == nullptr) return consensus::encode(message);
  if (*write != _write) {
    _bytes = consensus::encode(message);
    _write = *write;
  }
  return _bytes;
}

Decoded<PhaserMessage> decode_phaser_message(std::string_view bytes) {
  return decode_versioned<PhaserMessage>(bytes, phaser_format_version, read_phaser_message);
}

Decoded<PhaserRecord> decode_phaser_record(std::string_view bytes, WriteChecksum check) {
  return decode_versioned<PhaserRecord>(
      bytes, phaser_format_version, [check](Reader& in) { return read_phaser_record(in, check); });
}

Decoded<Write> decode_register_view(std::string_view bytes, std::vector<EntryView>& entries) {
  return decode_versioned<Write>(bytes, phaser_format_version, [&entries](Reader& in) {
    Write head;
    const uint8_t tag = in.u8();
    if (in.ok() && tag != static_cast<uint8_t>(RecordTag::register_write)) {
      in.fail("not a register");
    }
    if (in.ok()) read_write_into(in, head, entries);
    return head;
  });
}

}  // namespace coworker::consensus
