// Binary encoding primitives for consensus values: membership entries and
// snapshots today, the peer protocol's frames later.
//
// Plain values, no state beyond a cursor: a Writer appends to a string it
// owns; a Reader walks a string_view it borrows and turns every malformed
// input into a failed state (never an assertion: bytes come from disks and
// peers). Integers are LEB128 varints (unsigned), byte strings are a varint
// length then the bytes, sequences a varint count then the items. Decoding
// never reads past the end and never allocates more than the input could
// describe (counts are checked against the bytes left).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace coworker::consensus {

class Writer {
 public:
  void u64(uint64_t value) {
    while (value >= 0x80) {
      _bytes.push_back(static_cast<char>((value & 0x7f) | 0x80));
      value >>= 7;
    }
    _bytes.push_back(static_cast<char>(value));
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
      if (_at >= _bytes.size()) return fail();
      const auto byte = static_cast<uint8_t>(_bytes[_at++]);
      if (shift == 63 && byte > 1) return fail();  // more than 64 bits
      value |= static_cast<uint64_t>(byte & 0x7f) << shift;
      if ((byte & 0x80) == 0) return value;
    }
    return fail();
  }
  uint8_t u8() {
    if (_at >= _bytes.size()) return static_cast<uint8_t>(fail());
    return static_cast<uint8_t>(_bytes[_at++]);
  }
  bool boolean() {
    const uint8_t value = u8();
    if (value > 1) fail();
    return value == 1;
  }
  std::string bytes() {
    const uint64_t size = u64();
    if (!_ok || size > _bytes.size() - _at) {
      fail();
      return {};
    }
    std::string value(_bytes.substr(_at, size));
    _at += size;
    return value;
  }
  std::vector<uint64_t> ids() {
    const uint64_t count = u64();
    // Every id takes at least one byte.
    if (!_ok || count > _bytes.size() - _at) {
      fail();
      return {};
    }
    std::vector<uint64_t> values;
    values.reserve(count);
    for (uint64_t i = 0; i < count && _ok; i++) values.push_back(u64());
    return values;
  }
  // A count of items that take at least `min_bytes` each, checked against
  // what is left.
  uint64_t count(size_t min_bytes) {
    const uint64_t value = u64();
    if (!_ok || (min_bytes > 0 && value > (_bytes.size() - _at) / min_bytes)) return fail();
    return value;
  }

  bool ok() const { return _ok; }
  bool done() const { return _ok && _at == _bytes.size(); }
  size_t left() const { return _bytes.size() - _at; }
  uint64_t fail() {
    _ok = false;
    _at = _bytes.size();
    return 0;
  }

 private:
  std::string_view _bytes;
  size_t _at = 0;
  bool _ok = true;
};

}  // namespace coworker::consensus
