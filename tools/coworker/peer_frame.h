// Peer frames: the binary framing of participant-to-participant traffic
// (DESIGN §6), its encoder, the hello payload, and an incremental decoder.
//
// Pure code: no I/O, no clock, no allocation beyond the strings it fills. Any
// core may use it; a FrameDecoder belongs to one connection (one task on one
// core) for that connection's life. The payloads of membership and phaser
// frames are opaque here: consensus/*_codec.h made them and decodes them.
//
// A frame is a 16-byte header and then the payload. Integers are
// little-endian.
//
//   | offset | size | field       | value                                        |
//   |--------|------|-------------|----------------------------------------------|
//   | 0      | 4    | magic       | 0x46505743 ("CWPF" on the wire)              |
//   | 4      | 1    | version     | peer_protocol_version (1)                    |
//   | 5      | 1    | type        | FrameType: 1 hello, 2 membership, 3 phaser,  |
//   |        |      |             | 4 hop (hop.h)                                |
//   | 6      | 2    | flags       | reserved, 0                                  |
//   | 8      | 4    | length      | payload bytes, <= frame_payload_bytes_max    |
//   | 12     | 4    | checksum    | CRC32C of bytes 0..11, then of the payload   |
//   | 16     | len  | payload     |                                              |
//
// The hello payload (the first frame on every connection, from the side that
// dialled; a later hello updates what it says, the address excepted):
//
//   | offset | size | field       | value                                        |
//   |--------|------|-------------|----------------------------------------------|
//   | 0      | 1    | version     | peer_protocol_version                        |
//   | 1      | 8    | cluster     | cluster id; 0: arriving, not known yet       |
//   | 9      | 8    | arrival id  | the sender's participant id; 0: none yet     |
//   | 17     | 2    | addr length | 1..peer_address_bytes_max                    |
//   | 19     | n    | address     | the sender's --peer-listen, "HOST:PORT"      |
//
// Nothing may follow the address. A new type, or any change to either
// table, bumps the version (2: type 4, hop, forwarded client requests).
//
// The decoder is fed whatever the socket gave (a frame may be cut anywhere)
// and stops at the end of each frame; it never reads past its input. It
// refuses, with a static reason, "bad magic", "bad version", "unknown type",
// "bad flags", "frame too large" (checked from the header, before any payload
// is buffered) and "checksum mismatch"; a refusal is final, because a byte
// stream that lost its framing cannot be trusted again.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "reactor/result.h"

namespace coworker::server {

inline constexpr uint32_t frame_magic = 0x46505743;  // "CWPF" in little-endian bytes
inline constexpr uint8_t peer_protocol_version = 2;
inline constexpr size_t frame_header_bytes = 16;
// A consensus value is at most 64 MiB (consensus/codec.h value_bytes_max);
// a message around it adds far less than 1 KiB.
inline constexpr size_t frame_payload_bytes_max = (size_t{64} << 20) + (size_t{1} << 10);
inline constexpr size_t peer_address_bytes_max = 255;
inline constexpr size_t hello_bytes_min = 19;  // an empty address (refused)

static_assert(frame_payload_bytes_max <= UINT32_MAX, "the length field is 32 bits");
static_assert(frame_header_bytes == 4 + 1 + 1 + 2 + 4 + 4, "the header table above");

enum class FrameType : uint8_t {
  hello = 1,
  membership = 2,
  phaser = 3,
  hop = 4,
};
inline constexpr uint8_t frame_type_max = 4;

bool frame_type_known(uint8_t type);
std::string_view frame_type_name(FrameType type);

// Appends one frame (header and payload) to `out`.
void encode_frame(std::string* out, FrameType type, std::string_view payload);
// The header of a frame whose payload goes out from its own buffer.
std::array<char, frame_header_bytes> encode_frame_header(FrameType type,
                                                         std::string_view payload);

struct Hello {
  uint8_t version = peer_protocol_version;
  uint64_t cluster = 0;
  uint64_t arrival_id = 0;
  std::string address;
  friend bool operator==(const Hello&, const Hello&) = default;
};

// The payload of a hello frame. The address must be 1..255 bytes.
std::string encode_hello(const Hello& hello);
// Refuses "truncated", "trailing bytes", "empty address", "address too long"
// and "bad address" (a byte outside printable ASCII). The version is not
// checked here: the receiver compares it with its own and says so.
Result<Hello, std::string_view> decode_hello(std::string_view payload);

class FrameDecoder {
 public:
  enum class Step : uint8_t { more, frame, error };
  struct Frame {
    FrameType type = FrameType::hello;
    std::string_view payload;
  };

  FrameDecoder() = default;
  FrameDecoder(const FrameDecoder&) = delete;
  FrameDecoder& operator=(const FrameDecoder&) = delete;

  // Takes bytes from the front of `input` and sets *used to how many (never
  // more than input.size()). Returns
  //   more   every byte was used and no frame is complete yet;
  //   frame  a frame ended at input[*used - 1]: frame() holds it until the
  //          next feed(), its payload pointing into `input` or into the
  //          decoder (so the caller keeps `input` alive until then);
  //   error  the stream is refused: error() says why; every later feed
  //          returns error and uses nothing.
  Step feed(std::string_view input, size_t* used);

  const Frame& frame() const;
  std::string_view error() const;
  // Between frames: no partial frame is buffered.
  bool idle() const { return _header_have == 0 && !_failed; }

 private:
  Step refuse(const char* reason);
  const char* check_header();
  Step finish_payload(std::string_view payload);

  std::array<char, frame_header_bytes> _header{};
  size_t _header_have = 0;
  FrameType _type = FrameType::hello;
  uint32_t _length = 0;
  uint32_t _checksum = 0;  // the header's field
  uint32_t _crc = 0;       // running over header and buffered payload
  std::string _payload;    // a payload cut across feeds
  bool _has_frame = false;
  bool _failed = false;
  const char* _error = nullptr;
  Frame _frame;
};

}  // namespace coworker::server
