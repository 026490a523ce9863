// The hop codec (tools/coworker/hop.h), alone: random hops of all four kinds
// drawn from a fixed-seed Prng survive a round trip byte for byte and match
// an encoder written here from hop.h's format comment; every strict prefix,
// an appended byte, a bad version, an unknown kind and each out-of-range
// field fail closed with their exact reason; every varint written with a
// needless zero group is refused; fixed vectors pin the format.
#include <doctest/doctest.h>

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "consensus/codec.h"
#include "consensus/prng.h"
#include "tools/coworker/hop.h"

using namespace coworker;
using namespace coworker::server;
using consensus::BucketEntry;
using consensus::ConnectionId;
using consensus::MessageResult;
using consensus::Outcome;
using consensus::Prng;

namespace {

constexpr uint64_t seed = 0x40b;
constexpr uint8_t outcome_count = static_cast<uint8_t>(Outcome::expired) + 1;

// Random hops from one Prng stream. Integers lean to the edges of their
// varint encodings; bytes are arbitrary (NUL and 0xff included).
class Gen {
 public:
  // `bytes_max` bounds identifiers and bodies; `messages_max` the messages of
  // an append and the results of an answer.
  Gen(uint64_t stream, size_t bytes_max, size_t messages_max)
      : _prng(consensus::derive_seed(seed, stream)),
        _bytes_max(bytes_max),
        _messages_max(messages_max) {}

  Prng& prng() { return _prng; }

  uint64_t u64() {
    switch (_prng.below(6)) {
      case 0: return 0;
      case 1: return _prng.below(0x80);
      case 2: return _prng.below(uint64_t{1} << 14);
      case 3: return _prng.next() >> _prng.below(64);
      case 4: return UINT64_MAX - _prng.below(2);
      default: return _prng.next();
    }
  }
  uint32_t u32() {
    if (_prng.chance(1, 6)) return UINT32_MAX;
    return static_cast<uint32_t>(u64());
  }
  std::string bytes() {
    const size_t max = _prng.chance(1, 4) ? _bytes_max : std::min<size_t>(_bytes_max, 8);
    std::string text(_prng.below(max + 1), '\0');
    for (char& c : text) c = static_cast<char>(_prng.below(256));
    return text;
  }
  // 1..messages_max: mostly a few, now and then the most, else anything.
  size_t messages() {
    if (_prng.chance(1, 8)) return _messages_max;
    if (_prng.chance(1, 4)) return 1 + _prng.below(_messages_max);
    return 1 + _prng.below(std::min<size_t>(_messages_max, 4));
  }

  HopRoute route() {
    return HopRoute{u64(), static_cast<uint32_t>(_prng.between(1, hops_max)), u32()};
  }
  BucketEntry entry() {
    ConnectionId connection{u64(), u64() >> 1, uint64_t{1} << 53};
    if (_prng.chance(1, 2)) connection.wrap = (uint64_t{1} << 32) + u64() % ((uint64_t{1} << 53) - (uint64_t{1} << 32));
    const uint64_t series = connection.valid() ? u64() % connection.wrap : u64();
    return BucketEntry{bytes(), connection, series, u64(), bytes()};
  }
  // A bucket's part of a window: entries with a connection share the first
  // one's and follow the window's order (the decoder checks both), in steps
  // small enough to stay below half the wrap from the first.
  AppendHop append() {
    AppendHop hop{route(), u32(), {}};
    std::optional<ConnectionId> connection;
    uint64_t series = 0;
    uint64_t step_max = 0;
    for (size_t n = messages(); n > 0; n--) {
      BucketEntry e = entry();
      if (e.connection.valid()) {
        if (!connection) {
          connection = e.connection;
          series = e.series;
          step_max = connection->wrap / 2 / (_messages_max + 1);
        } else {
          e.connection = *connection;
          series = (series + 1 + _prng.below(step_max)) % connection->wrap;
          e.series = series;
        }
      }
      hop.messages.push_back(std::move(e));
    }
    return hop;
  }
  ReadHop read() {
    ReadHop hop{route(), u32(), u64(), u32(), u32(), std::nullopt};
    if (_prng.chance(1, 2)) hop.identifier = bytes();
    return hop;
  }
  AppendAnswer append_answer() {
    AppendAnswer answer;
    // Zero results is a valid answer too.
    const size_t n = _prng.chance(1, 10) ? 0 : messages();
    for (size_t i = 0; i < n; i++) {
      const auto outcome = static_cast<Outcome>(_prng.below(outcome_count));
      answer.results.push_back(MessageResult{outcome, u64()});
    }
    return answer;
  }
  ReadAnswer read_answer() {
    static constexpr uint16_t edges[] = {100, 200, 404, 599};
    const uint16_t status = _prng.chance(1, 2) ? edges[_prng.below(4)]
                                               : static_cast<uint16_t>(_prng.between(100, 599));
    return ReadAnswer{status, bytes()};
  }
  Hop hop() {
    Hop hop{u64(), {}};
    switch (_prng.below(4)) {
      case 0: hop.content = append(); break;
      case 1: hop.content = read(); break;
      case 2: hop.content = append_answer(); break;
      default: hop.content = read_answer(); break;
    }
    return hop;
  }

 private:
  Prng _prng;
  size_t _bytes_max;
  size_t _messages_max;
};

// An encoder written from hop.h's format comment (and phaser_codec.h's
// bucket_entry), not from hop.cc: it pins the format, and it can write the
// `pad_at`-th varint (counting from 0) with a needless zero group.
class Spec {
 public:
  explicit Spec(int pad_at = -1) : _pad_at(pad_at) {}

  void varint(uint64_t value) {
    const size_t start = _out.size();
    while (value >= 0x80) {
      _out += static_cast<char>((value & 0x7f) | 0x80);
      value >>= 7;
    }
    _out += static_cast<char>(value);
    if (_varints++ == _pad_at) {
      _out.back() = static_cast<char>(_out.back() | 0x80);
      _out += '\0';
      _padded_length = _out.size() - start;
    }
  }
  void byte(uint8_t value) { _out += static_cast<char>(value); }
  void bytes(std::string_view value) {
    varint(value.size());
    _out += value;
  }

  void route(const HopRoute& route) {
    varint(route.slot);
    varint(route.hops);
    varint(route.deadline_ms);
  }
  void hop(const Hop& hop) {
    byte(2);  // version
    if (const auto* append = std::get_if<AppendHop>(&hop.content)) {
      byte(1);
      varint(hop.call);
      route(append->route);
      varint(append->bucket);
      varint(append->messages.size());
      for (const BucketEntry& entry : append->messages) {
        bytes(entry.identifier);
        varint(entry.connection.issuer);
        // counter * 2 + 1 and the wrap when it is not 2^53, else counter * 2
        const bool wrapped = entry.connection.wrap != (uint64_t{1} << 53);
        varint(entry.connection.counter * 2 + (wrapped ? 1 : 0));
        if (wrapped) varint(entry.connection.wrap);
        varint(entry.series);
        varint(entry.window);
        bytes(entry.body);
      }
    } else if (const auto* read = std::get_if<ReadHop>(&hop.content)) {
      byte(2);
      varint(hop.call);
      route(read->route);
      varint(read->bucket);
      varint(read->from);
      varint(read->limit);
      varint(read->wait_ms);
      byte(read->identifier ? 1 : 0);
      if (read->identifier) bytes(*read->identifier);
    } else if (const auto* answer = std::get_if<AppendAnswer>(&hop.content)) {
      byte(3);
      varint(hop.call);
      varint(answer->results.size());
      for (const MessageResult& result : answer->results) {
        byte(static_cast<uint8_t>(result.outcome));
        varint(result.position);
      }
    } else {
      const auto& read_answered = std::get<ReadAnswer>(hop.content);
      byte(4);
      varint(hop.call);
      varint(read_answered.status);
      bytes(read_answered.body);
    }
  }

  const std::string& data() const { return _out; }
  int varints() const { return _varints; }
  // The padded varint's length with its extra group (0: none padded).
  size_t padded_length() const { return _padded_length; }

 private:
  std::string _out;
  int _varints = 0;
  int _pad_at;
  size_t _padded_length = 0;
};

std::string spec_of(const Hop& hop) {
  Spec spec;
  spec.hop(hop);
  return spec.data();
}

// The reason decoding fails, or "ok".
std::string error_of(std::string_view bytes) {
  const consensus::Decoded<Hop> decoded = decode_hop(bytes);
  if (decoded.value) {
    CHECK(decoded.error == nullptr);
    return "ok";
  }
  REQUIRE(decoded.error != nullptr);
  return decoded.error;
}

bool known_reason(std::string_view error) {
  static const std::set<std::string_view> reasons = {
      "truncated",    "varint too long", "non-minimal varint", "value too large",
      "bad bool",     "count too large", "bytes too large",    "bad version",
      "trailing bytes", "unknown kind",  "bad outcome",        "bad status",
      "empty append", "bad hops",      "bad value",  // an entry's wrap or series
  };
  return reasons.contains(error);
}

std::string hex(std::string_view bytes) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string text;
  for (char c : bytes) {
    text += digits[static_cast<uint8_t>(c) >> 4];
    text += digits[static_cast<uint8_t>(c) & 15];
  }
  return text;
}

// The head of a request of `kind` (1 append, 2 read) up to and including
// its route, with a chosen hops count.
consensus::Writer request_head(uint8_t kind, uint64_t hops) {
  consensus::Writer out;
  out.u8(hop_format_version);
  out.u8(kind);
  out.u64(77);    // call
  out.u64(12);    // slot
  out.u64(hops);  // hops
  out.u64(500);   // deadline_ms
  return out;
}

consensus::Writer append_head(uint64_t hops, uint64_t messages) {
  consensus::Writer out = request_head(1, hops);
  out.u64(3);  // bucket
  out.u64(messages);
  return out;
}

void write_entry(consensus::Writer& out, uint64_t i) {
  out.bytes("id/" + std::to_string(i));
  out.u64(2);  // issuer
  out.u64(9 * 2);  // counter 9, the default wrap
  out.u64(i);  // series
  out.u64(0);  // window
  out.bytes("body");
}

void read_tail(consensus::Writer& out) {
  out.u64(3);     // bucket
  out.u64(40);    // from
  out.u64(100);   // limit
  out.u64(1000);  // wait_ms
  out.u8(0);      // no identifier
}

std::string read_answer_with(uint64_t status) {
  consensus::Writer out;
  out.u8(hop_format_version);
  out.u8(4);
  out.u64(77);
  out.u64(status);
  out.bytes("{}");
  return out.take();
}

std::string append_answer_with(uint8_t outcome) {
  consensus::Writer out;
  out.u8(hop_format_version);
  out.u8(3);
  out.u64(77);
  out.u64(2);
  out.u8(0);  // appended
  out.u64(41);
  out.u8(outcome);
  out.u64(42);
  return out.take();
}

}  // namespace

TEST_CASE("hop: random hops of every kind survive a round trip, byte for byte") {
  Gen gen(1, 300, hop_messages_max);
  // What the rounds covered, checked at the end so a generator that drifts
  // cannot quietly stop testing a case.
  std::set<size_t> kinds;
  std::set<Outcome> outcomes;
  std::set<uint32_t> hops;
  bool identifier = false;
  bool no_identifier = false;
  bool fewest = false;
  bool most = false;
  for (int round = 0; round < 3000; round++) {
    const Hop hop = gen.hop();
    const std::string bytes = encode_hop(hop);
    INFO("round " << round << " kind " << hop.content.index());
    REQUIRE(bytes == spec_of(hop));
    const consensus::Decoded<Hop> decoded = decode_hop(bytes);
    REQUIRE(decoded.value.has_value());
    CHECK(decoded.error == nullptr);
    CHECK(*decoded.value == hop);
    CHECK(encode_hop(*decoded.value) == bytes);

    kinds.insert(hop.content.index());
    if (const auto* append = std::get_if<AppendHop>(&hop.content)) {
      hops.insert(append->route.hops);
      fewest |= append->messages.size() == 1;
      most |= append->messages.size() == hop_messages_max;
    } else if (const auto* read = std::get_if<ReadHop>(&hop.content)) {
      hops.insert(read->route.hops);
      identifier |= read->identifier.has_value();
      no_identifier |= !read->identifier.has_value();
    } else if (const auto* answer = std::get_if<AppendAnswer>(&hop.content)) {
      for (const MessageResult& result : answer->results) outcomes.insert(result.outcome);
    }
  }
  CHECK(kinds.size() == 4);
  CHECK(outcomes.size() == outcome_count);
  CHECK(hops == std::set<uint32_t>{1, 2, 3});
  CHECK(identifier);
  CHECK(no_identifier);
  CHECK(fewest);
  CHECK(most);
}

TEST_CASE("hop: an empty identifier is not a missing one") {
  ReadHop read{HopRoute{1, 1, 2000}, 0, 0, 0, 0, std::string()};
  const std::string with_empty = encode_hop(Hop{5, read});
  read.identifier.reset();
  const std::string without = encode_hop(Hop{5, read});
  CHECK(with_empty != without);
  const auto decoded = decode_hop(with_empty);
  REQUIRE(decoded.value.has_value());
  const auto& got = std::get<ReadHop>(decoded.value->content);
  REQUIRE(got.identifier.has_value());
  CHECK(got.identifier->empty());
  CHECK(!std::get<ReadHop>(decode_hop(without).value->content).identifier.has_value());
}

TEST_CASE("hop: every strict prefix fails closed; one byte more is trailing bytes") {
  Gen gen(2, 6, 3);
  for (int round = 0; round < 1000; round++) {
    const std::string bytes = encode_hop(gen.hop());
    for (size_t size = 0; size < bytes.size(); size++) {
      INFO("round " << round << " prefix " << size << " of " << bytes.size());
      const std::string error = error_of(std::string_view(bytes).substr(0, size));
      // A count the rest cannot hold fails before its items run out.
      CHECK((error == "truncated" || error == "count too large"));
    }
    const char extra = static_cast<char>(gen.prng().below(256));
    CHECK(error_of(bytes + extra) == "trailing bytes");
  }
  CHECK(error_of("") == "truncated");
  CHECK(error_of("\x02") == "truncated");
}

TEST_CASE("hop: a version other than 2 is bad version") {
  Gen gen(3, 6, 3);
  for (int round = 0; round < 20; round++) {
    const std::string bytes = encode_hop(gen.hop());
    REQUIRE(bytes[0] == 2);
    for (int version = 0; version < 256; version++) {
      if (version == hop_format_version) continue;
      std::string changed = bytes;
      changed[0] = static_cast<char>(version);
      INFO("version " << version);
      CHECK(error_of(changed) == "bad version");
    }
  }
}

TEST_CASE("hop: kinds 0 and 5 to 255 are unknown") {
  for (int kind = 0; kind < 256; kind++) {
    if (kind >= 1 && kind <= 4) continue;
    INFO("kind " << kind);
    consensus::Writer out;
    out.u8(hop_format_version);
    out.u8(static_cast<uint8_t>(kind));
    out.u64(77);  // call
    CHECK(error_of(out.data()) == "unknown kind");
    // Whatever follows, the kind decides first.
    out.u64(12);
    out.u64(1);
    CHECK(error_of(out.data()) == "unknown kind");
  }
}

TEST_CASE("hop: hops 0 and above hops_max are bad hops, in both requests") {
  for (uint8_t kind : {uint8_t{1}, uint8_t{2}}) {
    for (uint64_t hops : {uint64_t{0}, uint64_t{1}, uint64_t{hops_max}, uint64_t{hops_max + 1},
                          uint64_t{UINT32_MAX}, uint64_t{1} << 32}) {
      INFO("kind " << int(kind) << " hops " << hops);
      consensus::Writer out = request_head(kind, hops);
      if (kind == 1) {
        out.u64(3);  // bucket
        out.u64(1);  // one message
        write_entry(out, 0);
      } else {
        read_tail(out);
      }
      const std::string error = error_of(out.data());
      if (hops > UINT32_MAX) {
        CHECK(error == "value too large");  // a 32-bit field
      } else if (hops == 0 || hops > hops_max) {
        CHECK(error == "bad hops");
      } else {
        CHECK(error == "ok");
      }
    }
  }
}

TEST_CASE("hop: an append of no messages is empty append") {
  CHECK(error_of(append_head(1, 0).data()) == "empty append");
  consensus::Writer one = append_head(1, 1);
  write_entry(one, 0);
  CHECK(error_of(one.data()) == "ok");
}

TEST_CASE("hop: an append or an answer of 1001 messages is count too large; 1000 decode") {
  for (size_t n : {hop_messages_max, hop_messages_max + 1}) {
    INFO("messages " << n);
    consensus::Writer append = append_head(2, n);
    for (size_t i = 0; i < n; i++) write_entry(append, i);
    consensus::Writer answer;
    answer.u8(hop_format_version);
    answer.u8(3);
    answer.u64(77);
    answer.u64(n);
    for (size_t i = 0; i < n; i++) {
      answer.u8(1);  // duplicate
      answer.u64(i);
    }
    const std::string expected = n > hop_messages_max ? "count too large" : "ok";
    CHECK(error_of(append.data()) == expected);
    CHECK(error_of(answer.data()) == expected);
  }
}

TEST_CASE("hop: an outcome past overloaded is bad outcome") {
  for (int outcome = 0; outcome < 256; outcome++) {
    INFO("outcome " << outcome);
    CHECK(error_of(append_answer_with(static_cast<uint8_t>(outcome))) ==
          (outcome < outcome_count ? "ok" : "bad outcome"));
  }
}

TEST_CASE("hop: a status outside 100..599 is bad status") {
  for (uint64_t status : {uint64_t{100}, uint64_t{200}, uint64_t{599}}) {
    INFO("status " << status);
    CHECK(error_of(read_answer_with(status)) == "ok");
  }
  // 65536 + 200 would pass as 200 if the check came after the cast to u16.
  for (uint64_t status : {uint64_t{0}, uint64_t{99}, uint64_t{600}, uint64_t{65535},
                          uint64_t{65536 + 200}, UINT64_MAX}) {
    INFO("status " << status);
    CHECK(error_of(read_answer_with(status)) == "bad status");
  }
}

TEST_CASE("hop: a has_identifier byte other than 0 or 1 is bad bool") {
  consensus::Writer out = request_head(2, 1);
  out.u64(3);
  out.u64(40);
  out.u64(100);
  out.u64(1000);
  out.u8(2);
  out.bytes("x");
  CHECK(error_of(out.data()) == "bad bool");
}

TEST_CASE("hop: a 32-bit field above 32 bits is value too large") {
  consensus::Writer out = request_head(2, 1);
  out.u64(uint64_t{1} << 32);  // bucket
  out.u64(40);
  out.u64(100);
  out.u64(1000);
  out.u8(0);
  CHECK(error_of(out.data()) == "value too large");
}

TEST_CASE("hop: every varint written with a needless zero group is refused") {
  Gen gen(4, 6, 3);
  int checked = 0;
  for (int round = 0; round < 300; round++) {
    const Hop hop = gen.hop();
    Spec plain;
    plain.hop(hop);
    REQUIRE(plain.data() == encode_hop(hop));
    for (int at = 0; at < plain.varints(); at++) {
      Spec padded(at);
      padded.hop(hop);
      REQUIRE(padded.padded_length() > 0);
      INFO("round " << round << " varint " << at << ": " << hex(padded.data()));
      // A 64-bit value that needs ten groups cannot take an eleventh.
      CHECK(error_of(padded.data()) ==
            (padded.padded_length() > 10 ? "varint too long" : "non-minimal varint"));
      checked++;
    }
  }
  CHECK(checked > 2000);  // about nine varints a hop
}

TEST_CASE("hop: a changed byte fails with a reason or decodes to exactly those bytes") {
  Gen gen(5, 6, 3);
  for (int round = 0; round < 20000; round++) {
    std::string bytes = encode_hop(gen.hop());
    bytes[gen.prng().below(bytes.size())] = static_cast<char>(gen.prng().below(256));
    const consensus::Decoded<Hop> decoded = decode_hop(bytes);
    INFO("round " << round << ": " << hex(bytes));
    if (decoded.value) {
      CHECK(encode_hop(*decoded.value) == bytes);
    } else {
      CHECK(known_reason(decoded.error));
    }
  }
}

TEST_CASE("hop: an append's entries out of a window's order fail bad value") {
  // What a confused peer might send; a phaser would assert on it.
  const ConnectionId c{1, 2, uint64_t{1} << 32};
  const ConnectionId d{1, 3};
  const auto entry = [](ConnectionId id, uint64_t series) {
    return BucketEntry{"id", id, series, series, "b"};
  };
  const uint64_t w = uint64_t{1} << 32;
  for (const std::vector<BucketEntry>& bad :
       {std::vector<BucketEntry>{entry(c, 0), entry(c, w / 2 - 1), entry(c, w - 2)},  // first, last
        std::vector<BucketEntry>{entry(c, 0), entry(c, w / 3), entry(c, 2 * w / 3), entry(c, 0)},
        std::vector<BucketEntry>{entry(c, 5), entry(c, 5)},
        std::vector<BucketEntry>{entry(c, 5), entry(c, 4)},
        std::vector<BucketEntry>{entry(c, 5), entry(d, 6)}}) {  // two connections
    const std::string bytes = encode_hop(Hop{1, AppendHop{HopRoute{0, 1, 100}, 3, bad}});
    CHECK(error_of(bytes) == "bad value");
  }
  // Across the wrap, and with untracked messages between: in order.
  const std::vector<BucketEntry> good{entry(c, w - 2), entry(ConnectionId{}, 0), entry(c, w - 1),
                                      entry(c, 0), entry(c, 1)};
  CHECK(error_of(encode_hop(Hop{1, AppendHop{HopRoute{0, 1, 100}, 3, good}})) == "ok");
}

TEST_CASE("hop: fixed vectors pin the format") {
  const AppendHop append{HopRoute{300, 1, 2000}, 7,
                         {BucketEntry{"id", ConnectionId{1, 2}, 3, 3, "hi"}}};
  CHECK(hex(encode_hop(Hop{5, append})) ==
        "02" "01" "05" "ac02" "01" "d00f" "07" "01"  // version kind call route bucket n
        "026964" "01" "04" "0303" "026869");         // the entry (counter 2 as 2*2)
  const ReadHop read{HopRoute{0, 3, 0}, 1, 128, 100, 0, std::string("k")};
  CHECK(hex(encode_hop(Hop{6, read})) == "02" "02" "06" "000300" "01" "8001" "64" "00" "01" "016b");
  const AppendAnswer answer{{MessageResult{Outcome::duplicate, 9},
                             MessageResult{Outcome::overloaded, 0}}};
  CHECK(hex(encode_hop(Hop{7, answer})) == "02" "03" "07" "02" "0109" "0400");
  CHECK(hex(encode_hop(Hop{8, ReadAnswer{200, "{}"}})) == "02" "04" "08" "c801" "027b7d");
}
