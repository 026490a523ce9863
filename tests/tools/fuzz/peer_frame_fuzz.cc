// libFuzzer target for the peer frame codec (tools/coworker/peer_frame.h)
// and the codecs of what frames carry: hops (hop.h) and base64 (base64.h).
//
// Input: byte 0 = options, byte 1 = the cutting seed, the rest = either
//   - (options bit 0 clear) raw bytes on the wire: decoded whole and cut
//     into pieces (sizes drawn from the seed, each piece in a heap block of
//     its exact size so ASan sees a read past it); both runs must agree,
//     every frame must re-encode to exactly the bytes it came from, and a
//     hello payload that decodes must re-encode to itself;
//   - (bit 0 set) a list of frames to build, each a type byte, a length byte
//     (times 257 when bit 1 is set) and the payload bytes; the encoded stream
//     must decode to exactly that list, whole and cut. With bit 2 set, one
//     byte of the stream (chosen by the seed) is flipped first: the frames
//     before it still come, the frame it is in never comes unchanged.
//
// Every input, options bytes included, is also fed whole to the payload
// codecs that ride in frames (so a seed is just a valid encoding):
//   - decode_hop (hop.h): when it decodes, encode_hop must accept the value
//     (its assertions ask no more than decode checks), the encoding must
//     decode to an equal Hop, and it must be exactly the input (one encoding
//     per value);
//   - base64_decode (base64.h): when it decodes, base64_encode of the bytes
//     must be exactly the input (canonical decode); and base64_encode of any
//     input must decode back to it;
//   - parse_connection (connection_text.h), under cluster ids 0 and 7: an
//     id it takes must print back to exactly the input, and must be
//     refused as unknown under the other cluster id, or print the same
//     check there (a CRC32C collision).
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "tools/coworker/base64.h"
#include "tools/coworker/connection_text.h"
#include "tools/coworker/hop.h"
#include "tools/coworker/peer_frame.h"

using namespace coworker;
using namespace coworker::server;

namespace {

struct Outcome {
  std::vector<std::pair<FrameType, std::string>> frames;
  std::vector<size_t> ends;  // where each frame ended in the input
  std::string error;
  bool idle = true;
  bool operator==(const Outcome& o) const {
    return frames == o.frames && ends == o.ends && error == o.error && idle == o.idle;
  }
};

Outcome decode(std::string_view input, uint32_t seed) {
  FrameDecoder decoder;
  Outcome out;
  size_t at = 0;
  while (at < input.size()) {
    size_t piece = input.size() - at;
    if (seed != 0) {
      seed = seed * 1103515245u + 12345u;
      piece = std::min<size_t>(piece, 1 + (seed >> 16) % 41);
    }
    // An exact-size heap copy: a read past the piece is a heap overflow.
    std::unique_ptr<char[]> copy(new char[piece]);
    std::memcpy(copy.get(), input.data() + at, piece);
    std::string_view rest(copy.get(), piece);
    size_t offset = at;
    at += piece;
    for (;;) {
      size_t used = 0;
      const FrameDecoder::Step step = decoder.feed(rest, &used);
      if (used > rest.size()) __builtin_trap();
      rest.remove_prefix(used);
      offset += used;
      if (step == FrameDecoder::Step::frame) {
        out.frames.emplace_back(decoder.frame().type, std::string(decoder.frame().payload));
        out.ends.push_back(offset);
        continue;
      }
      if (step == FrameDecoder::Step::error) {
        out.error = std::string(decoder.error());
        out.idle = false;
        return out;
      }
      if (!rest.empty()) __builtin_trap();  // more, yet input left over
      break;
    }
  }
  out.idle = decoder.idle();
  return out;
}

void check_raw(std::string_view input, uint32_t seed) {
  const Outcome whole = decode(input, 0);
  if (!(decode(input, seed) == whole)) __builtin_trap();  // cutting changed the outcome
  size_t start = 0;
  for (size_t i = 0; i < whole.frames.size(); i++) {
    std::string again;
    encode_frame(&again, whole.frames[i].first, whole.frames[i].second);
    if (input.substr(start, whole.ends[i] - start) != again) __builtin_trap();
    start = whole.ends[i];
    if (whole.frames[i].first != FrameType::hello) continue;
    Result<Hello, std::string_view> hello = decode_hello(whole.frames[i].second);
    if (hello && encode_hello(*hello) != whole.frames[i].second) __builtin_trap();
  }
}

void check_built(std::string_view spec, uint8_t options, uint32_t seed) {
  std::vector<std::pair<FrameType, std::string>> frames;
  std::vector<size_t> ends;
  std::string stream;
  while (spec.size() >= 2) {
    const auto type = static_cast<FrameType>(1 + static_cast<uint8_t>(spec[0]) % frame_type_max);
    size_t length = static_cast<uint8_t>(spec[1]);
    if (options & 2) length *= 257;
    spec.remove_prefix(2);
    std::string payload(spec.substr(0, std::min(length, spec.size())));
    spec.remove_prefix(std::min(length, spec.size()));
    payload.resize(length, 'z');
    encode_frame(&stream, type, payload);
    ends.push_back(stream.size());
    frames.emplace_back(type, std::move(payload));
  }
  if (!(options & 4) || stream.empty()) {
    const Outcome whole = decode(stream, 0);
    if (whole.frames != frames || !whole.error.empty() || !whole.idle) __builtin_trap();
    if (!(decode(stream, seed) == whole)) __builtin_trap();
    return;
  }
  const size_t flip_at = seed % stream.size();
  stream[flip_at] = static_cast<char>(stream[flip_at] ^ (1 + (seed >> 8) % 255));
  size_t hit = 0;
  while (ends[hit] <= flip_at) hit++;
  const Outcome whole = decode(stream, 0);
  if (!(decode(stream, seed) == whole)) __builtin_trap();
  for (size_t i = 0; i < hit; i++) {
    if (i >= whole.frames.size() || whole.frames[i] != frames[i]) __builtin_trap();
  }
  if (whole.frames.size() > hit && whole.frames[hit] == frames[hit]) __builtin_trap();
}

void check_hop(std::string_view input) {
  const consensus::Decoded<Hop> decoded = decode_hop(input);
  if (!decoded.value) {
    if (decoded.error == nullptr) __builtin_trap();  // a refusal names its reason
    return;
  }
  if (decoded.error != nullptr) __builtin_trap();
  const std::string again = encode_hop(*decoded.value);
  const consensus::Decoded<Hop> twice = decode_hop(again);
  if (!twice.value || !(*twice.value == *decoded.value)) __builtin_trap();
  if (again != input) __builtin_trap();  // a second encoding of one value
}

void check_base64(std::string_view input) {
  if (const std::optional<std::string> bytes = base64_decode(input)) {
    std::string again;
    base64_encode(again, *bytes);
    if (again != input) __builtin_trap();  // a non-canonical text accepted
  }
  std::string text;
  base64_encode(text, input);
  const std::optional<std::string> back = base64_decode(text);
  if (!back || *back != input) __builtin_trap();
}

}  // namespace

void check_connection(std::string_view input) {
  for (const uint64_t cluster : {uint64_t{0}, uint64_t{7}}) {
    const auto id = parse_connection(input, cluster);
    if (!id) continue;
    if (connection_text(*id, cluster) != input) __builtin_trap();  // one text per id
    const uint64_t other = cluster == 0 ? 7 : 0;
    const auto elsewhere = parse_connection(input, other);
    if (elsewhere && connection_text(*elsewhere, other) != input) __builtin_trap();
    if (!elsewhere && elsewhere.error() != ConnectionRefusal::unknown) __builtin_trap();
  }
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view whole(reinterpret_cast<const char*>(data), size);
  check_hop(whole);
  check_base64(whole);
  check_connection(whole);
  if (size < 2) return 0;
  const uint8_t options = data[0];
  const uint32_t seed = data[1] | 0x100u;
  const std::string_view input(reinterpret_cast<const char*>(data + 2), size - 2);
  if (options & 1) {
    check_built(input, options, seed);
  } else {
    check_raw(input, seed);
  }
  return 0;
}
