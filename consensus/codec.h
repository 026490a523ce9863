// Binary encoding primitives for consensus values: membership entries and
// snapshots, the Paxos, membership and phaser messages and records
// (paxos_codec.h, membership_codec.h, phaser_codec.h), the peer protocol's
// frames later.
//
// Plain values, no state beyond a cursor: a Writer appends to a string it
// owns; a Reader walks a string_view it borrows and turns every malformed
// input into a failed state (never an assertion: bytes come from disks and
// peers). Integers are LEB128 varints (unsigned, minimal: a varint with a
// needless zero last group is refused, so every value has one encoding),
// checksums four little-endian bytes, byte strings a varint length then the
// bytes, sequences a varint count then the items. Decoding never reads past
// the end and never allocates more than the input could describe (counts are
// checked against the bytes left).
//
// A failed Reader remembers the first reason, a static string:
//   "truncated"           the input ends inside a value
//   "varint too long"     more than 64 bits
//   "non-minimal varint"  a needless trailing zero group
//   "value too large"     above the field's width (a 32-bit field, say)
//   "bad bool"            a boolean byte other than 0 or 1
//   "count too large"     more items than the bytes left could hold, or a cap
//   "bytes too large"     a byte string above its cap
// and the codecs built on it add "bad version", "unknown tag",
// "trailing bytes", "unsorted keys", "position overflow",
// "checksum mismatch" and "bad value" (fields that contradict each other or
// a value the field never holds, in checkpoints). A decoder returns a Decoded<T>: the value, or the
// reason it has none.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "consensus/assert.h"
#include "consensus/ids.h"

namespace coworker::consensus {

// The largest byte string inside a consensus value (an entry's value, a
// message body, a snapshot): the log store's record payload limit
// (bucket/record.h record_payload_bytes_max).
constexpr size_t value_bytes_max = size_t{64} << 20;

class Writer {
 public:
  // LEB128 varint. Built on the stack and appended once: a push_back per
  // byte was about 8% of a participant's instructions per append (callgrind).
  void u64(uint64_t value) {
    char out[varint_bytes_max];
    _bytes.append(out, varint(out, value));
  }
  // Writes `value` as a varint at `out` (room for varint_bytes_max), returns
  // its length: for codecs that build several fields on the stack and append
  // them at once (write_bucket_entry).
  static constexpr size_t varint_bytes_max = 10;
  static size_t varint(char* out, uint64_t value) {
    size_t n = 0;
    while (value >= 0x80) {
      out[n++] = static_cast<char>((value & 0x7f) | 0x80);
      value >>= 7;
    }
    out[n++] = static_cast<char>(value);
    return n;
  }
  void u32(uint32_t value) { u64(value); }
  // Four bytes, little-endian: for checksums, whose varint would take five.
  void fixed32(uint32_t value) {
    const char out[4] = {static_cast<char>(value), static_cast<char>(value >> 8),
                         static_cast<char>(value >> 16), static_cast<char>(value >> 24)};
    _bytes.append(out, 4);
  }
  void u8(uint8_t value) { _bytes.push_back(static_cast<char>(value)); }
  void boolean(bool value) { u8(value ? 1 : 0); }
  void bytes(std::string_view value) {
    u64(value.size());
    _bytes.append(value);
  }
  void ids(const std::vector<uint64_t>& values) {
    u64(values.size());
    for (uint64_t value : values) u64(value);
  }
  // Room for `bytes` more, so a large encoding grows its buffer once.
  void reserve(size_t bytes) { _bytes.reserve(_bytes.size() + bytes); }
  // Raw bytes, no length: for a nested encoding that is itself framed.
  void raw(std::string_view value) { _bytes.append(value); }

  const std::string& data() const { return _bytes; }
  std::string take() { return std::move(_bytes); }

 private:
  std::string _bytes;
};

class Reader {
 public:
  explicit Reader(std::string_view bytes) : _bytes(bytes) {}

  // Each returns a zero value once the reader failed; check ok() at the end.
  uint64_t u64() {
    uint64_t value = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (_at >= _bytes.size()) return fail("truncated");
      const auto byte = static_cast<uint8_t>(_bytes[_at++]);
      if (shift == 63 && byte > 1) return fail("varint too long");  // more than 64 bits
      value |= static_cast<uint64_t>(byte & 0x7f) << shift;
      if ((byte & 0x80) == 0) {
        if (byte == 0 && shift > 0) return fail("non-minimal varint");
        return value;
      }
    }
    return fail("varint too long");
  }
  uint32_t u32() {
    const uint64_t value = u64();
    if (value > UINT32_MAX) return static_cast<uint32_t>(fail("value too large"));
    return static_cast<uint32_t>(value);
  }
  uint32_t fixed32() {
    if (left() < 4) return static_cast<uint32_t>(fail("truncated"));
    uint32_t value = 0;
    for (int i = 0; i < 4; i++) value |= uint32_t{static_cast<uint8_t>(_bytes[_at++])} << (8 * i);
    return value;
  }
  uint8_t u8() {
    if (_at >= _bytes.size()) return static_cast<uint8_t>(fail("truncated"));
    return static_cast<uint8_t>(_bytes[_at++]);
  }
  bool boolean() {
    const uint8_t value = u8();
    if (value > 1) fail("bad bool");
    return value == 1;
  }
  std::string bytes(size_t max = value_bytes_max) { return std::string(bytes_view(max)); }
  // The same, in place: a view into the bytes being read.
  std::string_view bytes_view(size_t max = value_bytes_max) {
    const uint64_t size = u64();
    if (!ok()) return {};
    if (size > _bytes.size() - _at) return fail_bytes("truncated");
    if (size > max) return fail_bytes("bytes too large");
    const std::string_view value = _bytes.substr(_at, size);
    _at += size;
    return value;
  }
  std::vector<uint64_t> ids() {
    const uint64_t n = count(1);  // every id takes at least one byte
    std::vector<uint64_t> values;
    values.reserve(n);
    for (uint64_t i = 0; i < n && ok(); i++) values.push_back(u64());
    return values;
  }
  // A count of items that take at least `min_bytes` each, checked against
  // what is left.
  uint64_t count(size_t min_bytes) {
    const uint64_t value = u64();
    if (!ok()) return 0;
    if (min_bytes > 0 && value > left() / min_bytes) return fail("count too large");
    return value;
  }

  bool ok() const { return _error == nullptr; }
  bool done() const { return ok() && _at == _bytes.size(); }
  size_t left() const { return _bytes.size() - _at; }
  // Why the reader failed (nullptr while it has not).
  const char* error() const { return _error; }
  // Fails the reader (the first reason stays) and skips to the end.
  uint64_t fail(const char* reason = "malformed") {
    COWORKER_ASSERT(reason != nullptr);
    if (_error == nullptr) _error = reason;
    _at = _bytes.size();
    return 0;
  }

 private:
  std::string_view fail_bytes(const char* reason) {
    fail(reason);
    return {};
  }

  std::string_view _bytes;
  size_t _at = 0;
  const char* _error = nullptr;
};

// What a top-level decoder returns: the value, or a static string naming
// what was wrong (the reasons above).
template <class T>
struct Decoded {
  std::optional<T> value;
  const char* error = nullptr;

  explicit operator bool() const { return value.has_value(); }
};

// Decodes a top-level encoding: the version byte, then `read(reader)` (which
// returns a T and reports malformed input through reader.fail), then nothing.
template <class T, class Read>
Decoded<T> decode_versioned(std::string_view bytes, uint8_t version, Read&& read) {
  Reader reader(bytes);
  const uint8_t got = reader.u8();
  if (!reader.ok()) return {std::nullopt, reader.error()};
  if (got != version) return {std::nullopt, "bad version"};
  T value = read(reader);
  if (!reader.ok()) return {std::nullopt, reader.error()};
  if (!reader.done()) return {std::nullopt, "trailing bytes"};
  return {std::move(value), nullptr};
}

// ---- Values every codec shares ----

inline void write_promise(Writer& out, const Promise& promise) {
  out.u64(promise.slot);
  out.u32(promise.counter);
}

// A counter above 32 bits fails the reader ("value too large").
inline Promise read_promise(Reader& in) {
  Promise promise;
  promise.slot = in.u64();
  promise.counter = in.u32();
  return promise;
}

}  // namespace coworker::consensus
