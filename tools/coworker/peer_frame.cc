// Peer frames: encoder, hello payload and incremental decoder (peer_frame.h
// has the format tables). Pure functions and a per-connection decoder.
#include "tools/coworker/peer_frame.h"

#include <algorithm>
#include <cstring>

#include "consensus/assert.h"
#include "consensus/crc32c.h"

namespace coworker::server {

namespace {

// Bytes of the header the checksum covers: all but the checksum itself.
constexpr size_t header_checked_bytes = 12;
// A payload cut across feeds is buffered; the buffer grows with the bytes
// that came, so a header alone cannot make us reserve 64 MiB.
constexpr size_t payload_reserve_max = size_t{1} << 20;
// A buffer that held a bigger payload is freed after its frame.
constexpr size_t payload_keep_max = size_t{1} << 20;

static_assert(header_checked_bytes + 4 == frame_header_bytes);
static_assert(payload_keep_max >= payload_reserve_max);

void put_u16(char* out, uint16_t value) {
  for (int i = 0; i < 2; i++) out[i] = static_cast<char>(value >> (8 * i));
}
void put_u32(char* out, uint32_t value) {
  for (int i = 0; i < 4; i++) out[i] = static_cast<char>(value >> (8 * i));
}
void put_u64(char* out, uint64_t value) {
  for (int i = 0; i < 8; i++) out[i] = static_cast<char>(value >> (8 * i));
}
uint64_t get_le(const char* in, int bytes) {
  uint64_t value = 0;
  for (int i = 0; i < bytes; i++) {
    value |= uint64_t{static_cast<unsigned char>(in[i])} << (8 * i);
  }
  return value;
}

}  // namespace

bool frame_type_known(uint8_t type) { return type >= 1 && type <= frame_type_max; }

std::string_view frame_type_name(FrameType type) {
  switch (type) {
    case FrameType::hello: return "hello";
    case FrameType::membership: return "membership";
    case FrameType::phaser: return "phaser";
    case FrameType::hop: return "hop";
  }
  return "unknown";
}

std::array<char, frame_header_bytes> encode_frame_header(FrameType type,
                                                         std::string_view payload) {
  COWORKER_ASSERT(frame_type_known(static_cast<uint8_t>(type)));
  COWORKER_ASSERT(payload.size() <= frame_payload_bytes_max);
  std::array<char, frame_header_bytes> header{};
  put_u32(header.data(), frame_magic);
  header[4] = static_cast<char>(peer_protocol_version);
  header[5] = static_cast<char>(type);
  put_u16(header.data() + 6, 0);
  put_u32(header.data() + 8, static_cast<uint32_t>(payload.size()));
  uint32_t crc = consensus::crc32c(0, header.data(), header_checked_bytes);
  crc = consensus::crc32c(crc, payload.data(), payload.size());
  put_u32(header.data() + header_checked_bytes, crc);
  return header;
}

void encode_frame(std::string* out, FrameType type, std::string_view payload) {
  const std::array<char, frame_header_bytes> header = encode_frame_header(type, payload);
  out->append(header.data(), header.size());
  out->append(payload);
}

std::string encode_hello(const Hello& hello) {
  COWORKER_ASSERT(!hello.address.empty());
  COWORKER_ASSERT(hello.address.size() <= peer_address_bytes_max);
  std::string out(hello_bytes_min, '\0');
  out[0] = static_cast<char>(hello.version);
  put_u64(out.data() + 1, hello.cluster);
  put_u64(out.data() + 9, hello.arrival_id);
  put_u16(out.data() + 17, static_cast<uint16_t>(hello.address.size()));
  out += hello.address;
  return out;
}

Result<Hello, std::string_view> decode_hello(std::string_view payload) {
  if (payload.size() < hello_bytes_min) return std::string_view("truncated");
  Hello hello;
  hello.version = static_cast<uint8_t>(payload[0]);
  hello.cluster = get_le(payload.data() + 1, 8);
  hello.arrival_id = get_le(payload.data() + 9, 8);
  const size_t length = get_le(payload.data() + 17, 2);
  if (length == 0) return std::string_view("empty address");
  if (length > peer_address_bytes_max) return std::string_view("address too long");
  if (payload.size() < hello_bytes_min + length) return std::string_view("truncated");
  if (payload.size() > hello_bytes_min + length) return std::string_view("trailing bytes");
  const std::string_view address = payload.substr(hello_bytes_min, length);
  // Printable ASCII without spaces: it goes into log lines.
  if (!std::all_of(address.begin(), address.end(), [](char c) { return c > ' ' && c < 0x7f; })) {
    return std::string_view("bad address");
  }
  hello.address = std::string(address);
  return hello;
}

// ---- decoder ----------------------------------------------------------------

const FrameDecoder::Frame& FrameDecoder::frame() const {
  COWORKER_ASSERT(_has_frame);
  return _frame;
}

std::string_view FrameDecoder::error() const {
  COWORKER_ASSERT(_failed);
  return _error;
}

FrameDecoder::Step FrameDecoder::refuse(const char* reason) {
  COWORKER_ASSERT(!_failed);
  _failed = true;
  _error = reason;
  _payload = std::string();
  return Step::error;
}

const char* FrameDecoder::check_header() {
  COWORKER_ASSERT(_header_have == frame_header_bytes);
  const char* h = _header.data();
  if (get_le(h, 4) != frame_magic) return "bad magic";
  if (static_cast<uint8_t>(h[4]) != peer_protocol_version) return "bad version";
  if (!frame_type_known(static_cast<uint8_t>(h[5]))) return "unknown type";
  if (get_le(h + 6, 2) != 0) return "bad flags";
  const uint64_t length = get_le(h + 8, 4);
  if (length > frame_payload_bytes_max) return "frame too large";
  _type = static_cast<FrameType>(h[5]);
  _length = static_cast<uint32_t>(length);
  _checksum = static_cast<uint32_t>(get_le(h + header_checked_bytes, 4));
  _crc = consensus::crc32c(0, h, header_checked_bytes);
  return nullptr;
}

FrameDecoder::Step FrameDecoder::finish_payload(std::string_view payload) {
  COWORKER_ASSERT(payload.size() == _length);
  if (consensus::crc32c(_crc, payload.data(), payload.size()) != _checksum) {
    return refuse("checksum mismatch");
  }
  _frame = Frame{_type, payload};
  _has_frame = true;
  _header_have = 0;  // the next byte starts the next frame
  return Step::frame;
}

FrameDecoder::Step FrameDecoder::feed(std::string_view input, size_t* used) {
  *used = 0;
  if (_failed) return Step::error;
  if (_has_frame) {
    // The caller is done with the last frame: its bytes may go.
    _has_frame = false;
    _frame = {};
    if (_payload.capacity() > payload_keep_max) {
      _payload = std::string();
    } else {
      _payload.clear();
    }
  }
  size_t at = 0;
  if (_header_have < frame_header_bytes) {
    const size_t take = std::min(frame_header_bytes - _header_have, input.size());
    if (take > 0) std::memcpy(_header.data() + _header_have, input.data(), take);
    _header_have += take;
    at = take;
    *used = at;
    if (_header_have < frame_header_bytes) return Step::more;
    if (const char* why = check_header()) return refuse(why);
  }
  const std::string_view rest = input.substr(at);
  if (_payload.empty() && rest.size() >= _length) {
    // The whole payload is in this input: hand it out without a copy.
    *used = at + _length;
    return finish_payload(rest.substr(0, _length));
  }
  const size_t take = std::min<size_t>(_length - _payload.size(), rest.size());
  if (_payload.empty()) _payload.reserve(std::min<size_t>(_length, payload_reserve_max));
  if (take > 0) _payload.append(rest.data(), take);
  *used = at + take;
  COWORKER_ASSERT(*used <= input.size());
  if (_payload.size() < _length) return Step::more;
  return finish_payload(_payload);
}

}  // namespace coworker::server
