// Base64 (tools/coworker/base64.h), alone: the RFC 4648 §10 vectors both
// ways; random bytes against an encoder written here bit by bit; and the
// canonical decode — every non-canonical text refused (bad length, a
// character outside the alphabet, '=' anywhere but the end, over-padding,
// non-zero bits after the last symbol), checked exhaustively over every
// four-character text of the alphabet and '='.
#include <doctest/doctest.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "consensus/prng.h"
#include "tools/coworker/base64.h"

using namespace coworker;
using namespace coworker::server;

namespace {

constexpr std::string_view alphabet =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

std::string encoded(std::string_view bytes) {
  std::string out;
  base64_encode(out, bytes);
  return out;
}

// RFC 4648 §4 read literally: the bits in order, six at a time, the last
// group filled with zero bits, then '=' up to a multiple of four.
std::string spec_encode(std::string_view bytes) {
  std::string out;
  uint32_t bits = 0;
  int count = 0;
  for (char c : bytes) {
    bits = (bits << 8) | static_cast<uint8_t>(c);
    count += 8;
    while (count >= 6) {
      count -= 6;
      out += alphabet[(bits >> count) & 63];
    }
  }
  if (count > 0) out += alphabet[(bits << (6 - count)) & 63];
  while (out.size() % 4 != 0) out += '=';
  return out;
}

bool refused(std::string_view text) { return !base64_decode(text).has_value(); }

}  // namespace

TEST_CASE("base64: the RFC 4648 section 10 vectors, both ways") {
  const std::pair<std::string_view, std::string_view> vectors[] = {
      {"", ""},         {"f", "Zg=="},         {"fo", "Zm8="},         {"foo", "Zm9v"},
      {"foob", "Zm9vYg=="}, {"fooba", "Zm9vYmE="}, {"foobar", "Zm9vYmFy"},
  };
  for (const auto& vector : vectors) {
    // Not a structured binding: clang 14 cannot capture one in INFO's lambda.
    const std::string_view bytes = vector.first;
    const std::string_view text = vector.second;
    INFO("'" << std::string(bytes) << "'");
    CHECK(encoded(bytes) == text);
    CHECK(spec_encode(bytes) == text);
    const std::optional<std::string> decoded = base64_decode(text);
    REQUIRE(decoded.has_value());
    CHECK(*decoded == bytes);
  }
}

TEST_CASE("base64: encode appends to what the string holds") {
  std::string out = "body_base64=";
  base64_encode(out, "fo");
  CHECK(out == "body_base64=Zm8=");
  base64_encode(out, "");
  CHECK(out == "body_base64=Zm8=");
}

TEST_CASE("base64: random bytes of every length to 300 round trip") {
  consensus::Prng prng(0xb64);
  for (size_t length = 0; length <= 300; length++) {
    for (int round = 0; round < 20; round++) {
      std::string bytes(length, '\0');
      for (char& c : bytes) c = static_cast<char>(prng.below(256));
      const std::string text = encoded(bytes);
      INFO("length " << length << " round " << round);
      CHECK(text.size() == (length + 2) / 3 * 4);
      CHECK(text == spec_encode(bytes));
      const std::optional<std::string> decoded = base64_decode(text);
      REQUIRE(decoded.has_value());
      CHECK(*decoded == bytes);
    }
  }
}

TEST_CASE("base64: every byte value, in every position of a group, round trips") {
  std::string all;
  for (int value = 0; value < 256; value++) all += static_cast<char>(value);
  // Three rotations put each value at each of the three byte positions.
  for (size_t shift = 0; shift < 3; shift++) {
    const std::string bytes = all.substr(shift) + all.substr(0, shift);
    const std::string text = encoded(bytes);
    CHECK(text == spec_encode(bytes));
    CHECK(base64_decode(text) == bytes);
    // And each value alone, and with one more byte: both paddings.
    for (int value = 0; value < 256; value++) {
      const std::string one(1, static_cast<char>(value));
      const std::string two = one + bytes[static_cast<size_t>(value)];
      CHECK(base64_decode(encoded(one)) == one);
      CHECK(base64_decode(encoded(two)) == two);
    }
  }
}

TEST_CASE("base64: a length that is not a multiple of four is refused") {
  for (std::string_view text : {"Z", "Zg", "Zg=", "Zm9", "Zm9vY", "Zm9vYg", "Zm9vYg=",
                                "Zm9vYg===", "A", "AA", "AAA", "AAAAA", "="}) {
    INFO(std::string(text));
    CHECK(refused(text));
  }
  // Every cut of a valid text to a length that is not a multiple of four,
  // also with one symbol more when that does not make it one; and the whole
  // text with one to three symbols more.
  const std::string text = encoded("any carnal pleasure.");
  REQUIRE(!refused(text));
  for (std::string_view more : {"A", "AA", "AAA"}) CHECK(refused(text + std::string(more)));
  for (size_t size = 1; size < text.size(); size++) {
    if (size % 4 == 0) continue;
    INFO("size " << size);
    CHECK(refused(std::string_view(text).substr(0, size)));
    if ((size + 1) % 4 != 0) CHECK(refused(text.substr(0, size) + "A"));
  }
}

TEST_CASE("base64: a character outside the alphabet is refused, wherever it stands") {
  for (int c = 0; c < 256; c++) {
    if (alphabet.find(static_cast<char>(c)) != std::string_view::npos) continue;
    if (c == '=') continue;
    for (size_t at = 0; at < 8; at++) {
      std::string text = "Zm9vYmFy";
      text[at] = static_cast<char>(c);
      INFO("character " << c << " at " << at);
      CHECK(refused(text));
    }
    // In place of a padded group's symbols too.
    for (size_t at = 0; at < 2; at++) {
      std::string text = "Zm9vYg==";
      text[4 + at] = static_cast<char>(c);
      INFO("character " << c << " at " << 4 + at << " of a padded group");
      CHECK(refused(text));
    }
  }
  // The ones that matter most by name: URL-safe symbols, spaces, NUL.
  for (std::string_view text : {"Zm9v-mFy", "Zm9v_mFy", "Zm9 YmFy", "Zm9v\nmFy", "Zm9v\r\nFy",
                                "Zm9vYmF\t", " Zm9vYmF", "Zm9vYmF "}) {
    INFO(std::string(text));
    REQUIRE(text.size() % 4 == 0);  // refused for the character, not the length
    CHECK(refused(text));
  }
  CHECK(refused(std::string_view("Zm9v\0mFy", 8)));
  CHECK(refused(std::string_view("Zg=\0", 4)));
}

TEST_CASE("base64: '=' anywhere but the end, or more than two, is refused") {
  for (std::string_view text : {"Zg==Zm9v", "Zm8=Zm9v", "Zm=v", "Z=9v", "=m9v", "Zm9v=m9v",
                                "Zm9vY=Fy", "Zg=v", "Z=g=", "=g==", "Z===", "====",
                                "Zm9v====", "Zm9vZ===", "Zg==Zg=="}) {
    INFO(std::string(text));
    CHECK(refused(text));
  }
}

TEST_CASE("base64: bits after the last symbol must be zero: one text per value") {
  CHECK(base64_decode("Zg==") == std::string("f"));
  CHECK(refused("Zh=="));
  CHECK(base64_decode("Zm8=") == std::string("fo"));
  CHECK(refused("Zm9="));
  // With two '=' the last symbol keeps four bits; with one, two.
  for (size_t value = 0; value < 64; value++) {
    INFO("symbol " << alphabet[value]);
    const std::string two = std::string("Z") + alphabet[value] + "==";
    const std::string one = std::string("Zm") + alphabet[value] + "=";
    CHECK(refused(two) == (value % 16 != 0));
    CHECK(refused(one) == (value % 4 != 0));
    CHECK(refused("Zm9v" + two) == (value % 16 != 0));
  }
}

TEST_CASE("base64: of all four-character texts, exactly the encodings decode") {
  // 65^4 texts over the alphabet and '='; every one that decodes must be the
  // encoding of what it decodes to, and their count is that of all 1-, 2-
  // and 3-byte strings.
  std::string symbols(alphabet);
  symbols += '=';
  uint64_t decoded_count = 0;
  uint64_t mismatches = 0;
  std::string text(4, ' ');
  for (char a : symbols) {
    text[0] = a;
    for (char b : symbols) {
      text[1] = b;
      for (char c : symbols) {
        text[2] = c;
        for (char d : symbols) {
          text[3] = d;
          const std::optional<std::string> bytes = base64_decode(text);
          if (!bytes) continue;
          decoded_count++;
          if (encoded(*bytes) != text) mismatches++;
        }
      }
    }
  }
  CHECK(mismatches == 0);
  CHECK(decoded_count == (uint64_t{1} << 24) + (uint64_t{1} << 16) + (uint64_t{1} << 8));
}
