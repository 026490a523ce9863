// The peer transport (tools/coworker/peer.h) and its frame codec
// (peer_frame.h). The codec: round trips and every refusal, each input cut
// at every byte boundary. The transport: real loopback sockets between
// transports on one loop, on 127.0.0.1, .2 and .3 — ordered exchange both
// ways, cluster and version refusals, corrupted frames, reconnects to a peer
// that starts late or restarts, the queue bound, and close() with sends
// pending. Waits are conditions polled with the loop's Timeout under a
// deadline, never a bare sleep.
#include <doctest/doctest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "consensus/crc32c.h"
#include "reactor/block_on.h"
#include "reactor/net.h"
#include "reactor/ops.h"
#include "tools/coworker/peer.h"
#include "tools/coworker/peer_frame.h"

using namespace coworker;
using namespace coworker::server;
using namespace coworker::reactor;
using namespace std::chrono_literals;
using Step = FrameDecoder::Step;

namespace {

// ---- codec helpers ----------------------------------------------------------

struct Decoded {
  std::vector<std::pair<FrameType, std::string>> frames;
  std::string error;  // empty: none
  bool idle = true;   // no partial frame left
  friend bool operator==(const Decoded&, const Decoded&) = default;
};

// Feeds `pieces` in order to one decoder and records what comes out.
Decoded decode_pieces(const std::vector<std::string_view>& pieces) {
  FrameDecoder decoder;
  Decoded out;
  for (std::string_view piece : pieces) {
    while (true) {
      size_t used = 0;
      const Step step = decoder.feed(piece, &used);
      REQUIRE(used <= piece.size());
      piece.remove_prefix(used);
      if (step == Step::frame) {
        out.frames.emplace_back(decoder.frame().type, std::string(decoder.frame().payload));
        continue;  // a frame may end anywhere, even at the end of the piece
      }
      if (step == Step::error) {
        out.error = std::string(decoder.error());
        // Refusal is final: nothing more is taken.
        size_t again = 1;
        CHECK(decoder.feed("xyz", &again) == Step::error);
        CHECK(again == 0);
        out.idle = false;
        return out;
      }
      REQUIRE(piece.empty());
      break;
    }
  }
  out.idle = decoder.idle();
  return out;
}

Decoded decode_whole(std::string_view input) { return decode_pieces({input}); }

// Every cut into two pieces, and one byte at a time, must decode like the
// whole input.
void check_every_split(std::string_view input, const Decoded& expected) {
  CHECK(decode_whole(input) == expected);
  for (size_t cut = 0; cut <= input.size(); cut++) {
    INFO("cut at " << cut);
    CHECK(decode_pieces({input.substr(0, cut), input.substr(cut)}) == expected);
  }
  std::vector<std::string_view> bytes;
  for (size_t i = 0; i < input.size(); i++) bytes.push_back(input.substr(i, 1));
  CHECK(decode_pieces(bytes) == expected);
}

std::string frame_of(FrameType type, std::string_view payload) {
  std::string out;
  encode_frame(&out, type, payload);
  return out;
}

// A header with chosen fields and a correct checksum over `payload`.
std::string raw_frame(uint32_t magic, uint8_t version, uint8_t type, uint16_t flags,
                      uint32_t length, std::string_view payload) {
  std::string out = frame_of(FrameType::membership, payload);
  for (int i = 0; i < 4; i++) out[i] = static_cast<char>(magic >> (8 * i));
  out[4] = static_cast<char>(version);
  out[5] = static_cast<char>(type);
  out[6] = static_cast<char>(flags);
  out[7] = static_cast<char>(flags >> 8);
  for (int i = 0; i < 4; i++) out[8 + i] = static_cast<char>(length >> (8 * i));
  uint32_t crc = consensus::crc32c(0, out.data(), 12);
  crc = consensus::crc32c(crc, payload.data(), payload.size());
  for (int i = 0; i < 4; i++) out[12 + i] = static_cast<char>(crc >> (8 * i));
  return out;
}

}  // namespace

// ---- the frame codec ---------------------------------------------------------

TEST_CASE("peer frame: the header is 16 bytes in the documented layout") {
  const std::string frame = frame_of(FrameType::phaser, "abc");
  REQUIRE(frame.size() == frame_header_bytes + 3);
  CHECK(frame.substr(0, 4) == "CWPF");
  CHECK(frame[4] == peer_protocol_version);
  CHECK(frame[5] == 3);
  CHECK(frame[6] == 0);
  CHECK(frame[7] == 0);
  CHECK(frame.substr(8, 4) == std::string("\x03\0\0\0", 4));
  uint32_t crc = consensus::crc32c(0, frame.data(), 12);
  crc = consensus::crc32c(crc, "abc", 3);
  CHECK(frame.substr(12, 4) == std::string(reinterpret_cast<const char*>(&crc), 4));
  CHECK(frame.substr(16) == "abc");
  const auto header = encode_frame_header(FrameType::phaser, "abc");
  CHECK(std::string(header.data(), header.size()) == frame.substr(0, 16));
}

TEST_CASE("peer frame: frames of every type round trip, cut at every byte") {
  std::string stream;
  Decoded expected;
  const std::vector<std::pair<FrameType, std::string>> frames = {
      {FrameType::hello, encode_hello(Hello{.cluster = 9, .arrival_id = 4,
                                            .address = "127.0.0.2:7100"})},
      {FrameType::membership, ""},
      {FrameType::phaser, "x"},
      {FrameType::membership, std::string(300, 'm')},
      {FrameType::phaser, std::string("\0\xff\x01zero and high bytes", 22)},
  };
  for (const auto& [type, payload] : frames) {
    stream += frame_of(type, payload);
    expected.frames.emplace_back(type, payload);
  }
  check_every_split(stream, expected);
  // The stream cut short: the frames before the cut, and a partial one.
  Decoded head = expected;
  head.frames.pop_back();
  head.idle = false;
  check_every_split(std::string_view(stream).substr(0, stream.size() - 1), head);
}

TEST_CASE("peer frame: a large payload cut in a few places") {
  const std::string payload(3 << 20, 'p');
  const std::string stream = frame_of(FrameType::phaser, payload) + frame_of(FrameType::hello, "h");
  Decoded expected;
  expected.frames = {{FrameType::phaser, payload}, {FrameType::hello, "h"}};
  for (size_t cut : {size_t{0}, size_t{5}, size_t{16}, size_t{17}, size_t{1} << 20,
                     stream.size() - 20, stream.size() - 1}) {
    INFO("cut at " << cut);
    std::string_view s = stream;
    CHECK(decode_pieces({s.substr(0, cut), s.substr(cut)}) == expected);
  }
}

TEST_CASE("peer frame: each refusal, at every cut, with its reason") {
  struct Case {
    const char* name;
    std::string input;
    const char* reason;
  };
  const std::string ok = frame_of(FrameType::membership, "fine");
  std::string flipped = frame_of(FrameType::phaser, "payload");
  flipped[18] ^= 0x20;
  std::string flipped_checksum = frame_of(FrameType::phaser, "payload");
  flipped_checksum[13] ^= 0x01;
  const uint32_t too_large = static_cast<uint32_t>(frame_payload_bytes_max + 1);
  const std::vector<Case> cases = {
      {"magic", raw_frame(0x46505744, 2, 2, 0, 4, "abcd"), "bad magic"},
      {"version 1 (before hops)", raw_frame(frame_magic, 1, 2, 0, 4, "abcd"), "bad version"},
      {"version 3", raw_frame(frame_magic, 3, 2, 0, 4, "abcd"), "bad version"},
      {"type zero", raw_frame(frame_magic, 2, 0, 0, 4, "abcd"), "unknown type"},
      {"type 5", raw_frame(frame_magic, 2, 5, 0, 4, "abcd"), "unknown type"},
      {"flags", raw_frame(frame_magic, 2, 2, 0x100, 4, "abcd"), "bad flags"},
      {"length", raw_frame(frame_magic, 2, 2, 0, too_large, ""), "frame too large"},
      {"payload byte", flipped, "checksum mismatch"},
      {"checksum byte", flipped_checksum, "checksum mismatch"},
  };
  for (const Case& c : cases) {
    INFO(c.name);
    Decoded expected;
    expected.frames = {{FrameType::membership, "fine"}};
    expected.error = c.reason;
    expected.idle = false;
    // A good frame first, then the bad one, then more that must not come.
    check_every_split(ok + c.input + ok, expected);
  }
}

TEST_CASE("peer frame: a header announcing the largest payload is taken") {
  const std::string at_max =
      raw_frame(frame_magic, 2, 3, 0, static_cast<uint32_t>(frame_payload_bytes_max), "");
  FrameDecoder decoder;
  size_t used = 0;
  CHECK(decoder.feed(std::string_view(at_max).substr(0, 16), &used) == Step::more);
  CHECK(used == 16);
  CHECK(!decoder.idle());
}

TEST_CASE("peer frame: no flipped byte anywhere yields a frame") {
  const std::string frame = frame_of(FrameType::phaser, "a payload of some length");
  // Zeros after it: a flipped length then reads them as payload.
  const std::string tail(64, '\0');
  for (size_t i = 0; i < frame.size(); i++) {
    for (int bit = 0; bit < 8; bit++) {
      std::string bad = frame + tail;
      bad[i] = static_cast<char>(bad[i] ^ (1 << bit));
      INFO("byte " << i << " bit " << bit);
      const Decoded got = decode_whole(bad);
      CHECK(got.frames.empty());
    }
  }
}

TEST_CASE("peer frame: hello payloads round trip and bad ones are refused") {
  const Hello hello{.version = 1, .cluster = 0xc7f3a1, .arrival_id = 12,
                    .address = "127.0.0.3:7102"};
  const std::string payload = encode_hello(hello);
  CHECK(payload.size() == hello_bytes_min + hello.address.size());
  Result<Hello, std::string_view> back = decode_hello(payload);
  REQUIRE(back.ok());
  CHECK(*back == hello);
  // Every truncation is refused.
  for (size_t n = 0; n < payload.size(); n++) {
    INFO("length " << n);
    Result<Hello, std::string_view> cut = decode_hello(std::string_view(payload).substr(0, n));
    REQUIRE(!cut.ok());
    CHECK(cut.error() == "truncated");
  }
  CHECK(decode_hello(payload + "!").error() == "trailing bytes");
  std::string empty = payload.substr(0, hello_bytes_min);
  empty[17] = empty[18] = 0;
  CHECK(decode_hello(empty).error() == "empty address");
  std::string long_address = payload;
  long_address[17] = 0;
  long_address[18] = 1;  // 256
  CHECK(decode_hello(long_address).error() == "address too long");
  std::string spaced = payload;
  spaced[hello_bytes_min + 3] = ' ';
  CHECK(decode_hello(spaced).error() == "bad address");
  // Another version decodes: the receiver says why it refuses it.
  Hello future = hello;
  future.version = 2;
  CHECK(decode_hello(encode_hello(future))->version == 2);
}

// ---- transport helpers --------------------------------------------------------

namespace {

struct Received {
  PeerInfo from;
  FrameType type;
  std::string payload;
};

// A transport listening on `host` with an inbox of what it received.
class Node {
 public:
  explicit Node(const std::string& host_port, PeerConfig config = test_config())
      : transport(
            [this](const PeerInfo& from, FrameType type, std::string_view payload) {
              inbox.push_back(Received{from, type, std::string(payload)});
            },
            config) {
    Result<Endpoint, std::string> where = Endpoint::parse(host_port);
    REQUIRE(where.ok());
    Result<Endpoint> bound = transport.listen(*where);
    REQUIRE(bound.ok());
    endpoint = *bound;
    address = endpoint.to_string();
  }

  static PeerConfig test_config() {
    PeerConfig config;
    config.backoff_max = 200ms;
    return config;
  }

  // Payloads received from `from`, in order.
  std::vector<std::string> from(const std::string& sender) const {
    std::vector<std::string> out;
    for (const Received& r : inbox) {
      if (r.from.address == sender) out.push_back(r.payload);
    }
    return out;
  }

  std::vector<Received> inbox;
  PeerTransport transport;
  Endpoint endpoint;
  std::string address;
};

Task<bool> wait_until(std::function<bool()> done, Milliseconds limit = 10s) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (!done()) {
    if (std::chrono::steady_clock::now() >= deadline) co_return false;
    (void)co_await Timeout{1ms};
  }
  co_return true;
}

// A port on `host` that nobody listens on (it was free a moment ago).
std::string unused_address(const char* host) {
  Result<Endpoint, std::string> where = Endpoint::parse(fmt::format("{}:0", host));
  REQUIRE(where.ok());
  Result<int> fd = listen_tcp(*where, ReusePort::no);
  REQUIRE(fd.ok());
  Result<Endpoint> bound = local_endpoint(*fd);
  REQUIRE(bound.ok());
  ::close(*fd);
  return bound->to_string();
}

std::string payload_of(const std::string& from, const std::string& to, int i) {
  std::string payload = fmt::format("{}>{}#{}", from, to, i);
  // Now and then a large one, so batches mix sizes and recvs cut frames.
  if (i % 500 == 7) payload.append(size_t{256} << 10, static_cast<char>('a' + i % 26));
  return payload;
}

FrameType type_of(int i) { return i % 2 == 0 ? FrameType::membership : FrameType::phaser; }

// Sends a frame to `address` every few milliseconds until `done`.
Task<bool> send_until(PeerTransport& from, std::string address, std::function<bool()> done) {
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (!done()) {
    if (std::chrono::steady_clock::now() >= deadline) co_return false;
    from.send(address, FrameType::membership, "knock");
    (void)co_await Timeout{5ms};
  }
  co_return true;
}

// A raw connection to `to`: a test speaks the protocol by hand on it.
Task<int> raw_connect(Endpoint to) {
  Result<int> fd = co_await connect_tcp(to, nullptr, 1000ms);
  REQUIRE(fd.ok());
  co_return *fd;
}

// True once the other side has closed `fd` (0 bytes or a reset).
Task<bool> closed_by_peer(int fd) {
  char buffer[256];
  for (;;) {
    Result<size_t> n = co_await Recv{fd, buffer, 5000ms};
    if (!n) co_return n.error().code != ETIMEDOUT;
    if (*n == 0) co_return true;
  }
}

Task<void> send_raw(int fd, const std::string& bytes) {
  Result<size_t> sent = co_await Send{fd, bytes};
  REQUIRE(sent.ok());
}

std::string hello_bytes(uint8_t version, uint64_t cluster, const std::string& address) {
  return frame_of(FrameType::hello, encode_hello(Hello{.version = version, .cluster = cluster,
                                                       .arrival_id = 0, .address = address}));
}

}  // namespace

// ---- the transport ------------------------------------------------------------

namespace {

// `to` got exactly `count` frames from `from`, in order, each saying who sent it.
void check_from(const Node& to, const Node& from, int count, uint64_t id, uint64_t cluster) {
  INFO(from.address << " -> " << to.address);
  int seen = 0;
  int wrong = 0;
  for (const Received& r : to.inbox) {
    if (r.from.address != from.address) continue;
    if (r.payload != payload_of(from.address, to.address, seen) || r.type != type_of(seen) ||
        r.from.id != id || r.from.cluster != cluster ||
        r.from.remote.address.sin_addr.s_addr != from.endpoint.address.sin_addr.s_addr) {
      wrong++;
    }
    seen++;
  }
  CHECK(seen == count);
  CHECK(wrong == 0);
}

Task<void> exchange_body() {
  Node a("127.0.0.1:0");
  Node b("127.0.0.2:0");
  Node c("127.0.0.3:0");
  const std::vector<Node*> nodes = {&a, &b, &c};
  for (size_t i = 0; i < nodes.size(); i++) {
    nodes[i]->transport.set_cluster(0x77);
    nodes[i]->transport.set_self_id(i + 1);
  }
  constexpr int count = 3000;
  for (int i = 0; i < count; i++) {
    for (Node* from : nodes) {
      for (Node* to : nodes) {
        if (from != to) {
          from->transport.send(to->address, type_of(i),
                               payload_of(from->address, to->address, i));
        }
      }
    }
  }
  const bool all = co_await wait_until([&] {
    return a.inbox.size() == 2 * count && b.inbox.size() == 2 * count &&
           c.inbox.size() == 2 * count;
  });
  CHECK(all);
  for (size_t t = 0; t < nodes.size(); t++) {
    for (size_t f = 0; f < nodes.size(); f++) {
      if (t != f) check_from(*nodes[t], *nodes[f], count, f + 1, 0x77);
    }
  }
  for (Node* node : nodes) {
    const PeerStats& stats = node->transport.stats();
    CHECK(stats.frames_sent == 2 * count);
    CHECK(stats.frames_received == 2 * count);
    CHECK(stats.connects == 2);
    CHECK(stats.accepted == 2);
    CHECK(stats.frames_dropped == 0);
    CHECK(stats.frames_lost == 0);
    CHECK(stats.bad_frames == 0);
    // Frames queued together go out together.
    CHECK(stats.batches <= 20);
  }
  // A new id goes out in a fresh hello before B's next frame.
  b.transport.set_self_id(20);
  b.transport.send(a.address, FrameType::membership, "after");
  const bool after = co_await wait_until([&] { return a.inbox.back().payload == "after"; });
  CHECK(after);
  CHECK(a.inbox.back().from.id == 20);
  CHECK(a.inbox.back().from.address == b.address);
  for (Node* node : nodes) co_await node->transport.close();
}

Task<void> cluster_body() {
  Node a("127.0.0.1:0");
  Node b("127.0.0.2:0");
  Node c("127.0.0.3:0");
  a.transport.set_cluster(7);
  b.transport.set_cluster(8);  // c arrives: it knows no cluster yet
  for (int i = 0; i < 5; i++) b.transport.send(a.address, FrameType::membership, "other");
  bool ok = co_await wait_until([&] { return a.transport.stats().hellos_refused == 1; });
  CHECK(ok);
  // B is refused again on its next connection (a frame sent before B saw
  // the close may be lost with it: B sends until it has reconnected).
  ok = co_await send_until(b.transport, a.address,
                           [&] { return a.transport.stats().hellos_refused >= 2; });
  CHECK(ok);
  co_await b.transport.close();  // no more knocks
  const uint64_t refused = a.transport.stats().hellos_refused;
  // An arriving participant (cluster 0) is heard, and hears a member.
  c.transport.send(a.address, FrameType::membership, "arrive");
  a.transport.send(c.address, FrameType::membership, "welcome");
  ok = co_await wait_until([&] { return !a.inbox.empty() && !c.inbox.empty(); });
  CHECK(ok);
  CHECK(a.inbox.size() == 1);
  CHECK(a.inbox.front().payload == "arrive");
  CHECK(a.inbox.front().from.cluster == 0);
  CHECK(c.inbox.front().from.cluster == 7);
  // Once C learns another cluster, A's connection to it is closed and A
  // is refused from then on.
  c.transport.set_cluster(9);
  CHECK(c.transport.stats().hellos_refused == 1);
  ok = co_await send_until(a.transport, c.address,
                           [&] { return c.transport.stats().hellos_refused >= 2; });
  CHECK(ok);
  CHECK(c.inbox.size() == 1);
  // Another protocol version in the hello: refused, and nothing delivered.
  const int fd = co_await raw_connect(a.endpoint);
  co_await send_raw(fd, hello_bytes(peer_protocol_version + 1, 7, "127.0.0.9:7100") +
                            frame_of(FrameType::membership, "from the future"));
  CHECK(co_await closed_by_peer(fd));
  (void)co_await Close{fd};
  CHECK(a.transport.stats().hellos_refused > refused);
  CHECK(a.inbox.size() == 1);
  CHECK(a.transport.stats().frames_received == 1);
  for (Node* node : {&a, &c}) co_await node->transport.close();
  CHECK(a.inbox.size() == 1);
}

// Sends `bytes` on a fresh raw connection to `to` and waits for it to close.
Task<void> send_and_expect_close(const Node& to, const std::string& bytes) {
  const int fd = co_await raw_connect(to.endpoint);
  if (!bytes.empty()) co_await send_raw(fd, bytes);
  CHECK(co_await closed_by_peer(fd));
  (void)co_await Close{fd};
}

Task<void> corrupted_body() {
  PeerConfig config = Node::test_config();
  config.hello_timeout = 200ms;
  Node a("127.0.0.1:0", config);
  const std::string hello = hello_bytes(peer_protocol_version, 0, "127.0.0.9:7100");
  std::string flipped = frame_of(FrameType::phaser, "two");
  flipped[frame_header_bytes + 1] ^= 0x01;
  co_await send_and_expect_close(a, hello + frame_of(FrameType::membership, "one") + flipped +
                                        frame_of(FrameType::membership, "three"));
  REQUIRE(a.inbox.size() == 1);
  CHECK(a.inbox[0].payload == "one");
  CHECK(a.inbox[0].from.address == "127.0.0.9:7100");
  CHECK(a.transport.stats().bad_frames == 1);
  // A frame before any hello.
  co_await send_and_expect_close(a, frame_of(FrameType::membership, "early"));
  // Not our protocol at all.
  co_await send_and_expect_close(a, "GET / HTTP/1.1\r\nHost: x\r\n\r\n");
  // A hello that is not one.
  co_await send_and_expect_close(a, frame_of(FrameType::hello, "short"));
  // A second hello that changes the sender's address.
  co_await send_and_expect_close(a, hello + hello_bytes(peer_protocol_version, 0, "127.0.0.8:7100") +
                                        frame_of(FrameType::membership, "four"));
  // No hello at all, or half of one: closed once hello_timeout has passed.
  co_await send_and_expect_close(a, "");
  co_await send_and_expect_close(a, hello.substr(0, 20));
  CHECK(a.inbox.size() == 1);
  CHECK(a.transport.stats().bad_frames == 4);
  CHECK(a.transport.stats().hellos_refused == 1);
  CHECK(a.transport.stats().accepted == 7);
  co_await a.transport.close();
}

Task<void> late_start_body() {
  Node a("127.0.0.1:0");
  const std::string later = unused_address("127.0.0.2");
  for (int i = 0; i < 10; i++) a.transport.send(later, type_of(i), fmt::format("early #{}", i));
  bool ok = co_await wait_until([&] { return a.transport.stats().connect_failures >= 2; });
  CHECK(ok);
  CHECK(a.transport.queued_bytes(later) > 0);
  Node b(later);
  ok = co_await wait_until([&] { return b.inbox.size() == 10; });
  CHECK(ok);
  for (size_t i = 0; i < b.inbox.size(); i++) {
    CHECK(b.inbox[i].payload == fmt::format("early #{}", i));
  }
  CHECK(a.transport.stats().connects == 1);
  CHECK(a.transport.stats().frames_sent == 10);
  co_await b.transport.close();
  co_await a.transport.close();
}

Task<void> restart_body() {
  Node a("127.0.0.1:0");
  auto b = std::make_unique<Node>("127.0.0.2:0");
  const std::string b_address = b->address;
  for (int i = 0; i < 100; i++) {
    a.transport.send(b_address, FrameType::phaser, fmt::format("before #{}", i));
    b->transport.send(a.address, FrameType::phaser, fmt::format("back #{}", i));
  }
  bool ok = co_await wait_until([&] { return a.inbox.size() == 100 && b->inbox.size() == 100; });
  CHECK(ok);
  co_await b->transport.close();
  b.reset();
  // A keeps sending while B is away and after it is back on its address.
  std::vector<std::string> sent;
  auto send_one = [&] {
    sent.push_back(fmt::format("after #{}", sent.size()));
    a.transport.send(b_address, FrameType::membership, sent.back());
  };
  for (int i = 0; i < 5; i++) send_one();
  b = std::make_unique<Node>(b_address);
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (b->inbox.empty() && std::chrono::steady_clock::now() < deadline) {
    send_one();
    (void)co_await Timeout{2ms};
  }
  REQUIRE(!b->inbox.empty());
  // What arrived is in the order it was sent (some may have been lost with
  // the old connection; none is duplicated or reordered).
  size_t at = 0;
  for (const Received& r : b->inbox) {
    while (at < sent.size() && sent[at] != r.payload) at++;
    CHECK(at < sent.size());
    at++;
  }
  // And the new B reaches A.
  b->transport.send(a.address, FrameType::membership, "new b");
  ok = co_await wait_until([&] { return a.inbox.back().payload == "new b"; });
  CHECK(ok);
  CHECK(a.transport.stats().connects >= 2);
  co_await b->transport.close();
  co_await a.transport.close();
}

Task<void> full_queue_body() {
  PeerConfig config = Node::test_config();
  config.queue_bytes_max = size_t{64} << 10;
  Node a("127.0.0.1:0", config);
  const std::string later = unused_address("127.0.0.2");
  const std::string filler(1000, 'q');
  for (int i = 0; i < 200; i++) {
    a.transport.send(later, FrameType::membership, fmt::format("{:04}", i) + filler);
  }
  const size_t frame_bytes = frame_header_bytes + 4 + filler.size();
  const size_t fits = config.queue_bytes_max / frame_bytes;
  CHECK(a.transport.stats().frames_dropped == 200 - fits);
  CHECK(a.transport.queued_bytes(later) == fits * frame_bytes);
  // An empty queue takes one frame, however large; the next one is dropped.
  const std::string elsewhere = unused_address("127.0.0.3");
  a.transport.send(elsewhere, FrameType::phaser, std::string(size_t{100} << 10, 'B'));
  CHECK(a.transport.stats().frames_dropped == 200 - fits);
  a.transport.send(elsewhere, FrameType::phaser, "small");
  CHECK(a.transport.stats().frames_dropped == 200 - fits + 1);
  // B starts: it gets the frames that fit, in order, and nothing else.
  Node b(later);
  bool ok = co_await wait_until([&] { return a.transport.stats().frames_sent == fits; });
  CHECK(ok);
  ok = co_await wait_until([&] { return b.inbox.size() == fits; });
  CHECK(ok);
  for (size_t i = 0; i < b.inbox.size(); i++) {
    CHECK(b.inbox[i].payload == fmt::format("{:04}", i) + filler);
  }
  co_await b.transport.close();
  co_await a.transport.close();
  CHECK(b.inbox.size() == fits);
}

Task<void> close_pending_body() {
  PeerConfig config = Node::test_config();
  config.backoff_min = 10s;  // a reconnect timer that close() must cancel
  config.backoff_max = 10s;
  Node a("127.0.0.1:0", config);
  // A peer that never reads: a listener nobody accepts on. The kernel takes
  // the connection and a few MiB, then our send blocks.
  Result<Endpoint, std::string> deaf_host = Endpoint::parse("127.0.0.2:0");
  REQUIRE(deaf_host.ok());
  Result<int> deaf = listen_tcp(*deaf_host, ReusePort::no);
  REQUIRE(deaf.ok());
  const std::string deaf_address = local_endpoint(*deaf)->to_string();
  for (int i = 0; i < 48; i++) {
    a.transport.send(deaf_address, FrameType::phaser, std::string(size_t{1} << 20, 'd'));
  }
  bool ok = co_await wait_until([&] {
    return a.transport.stats().connects == 1 && a.transport.queued_bytes(deaf_address) == 0;
  });
  CHECK(ok);
  a.transport.send(deaf_address, FrameType::phaser, "queued behind");
  // A peer that is not there: its link sleeps in a 10 s backoff.
  const std::string nobody = unused_address("127.0.0.3");
  a.transport.send(nobody, FrameType::membership, "never");
  ok = co_await wait_until([&] { return a.transport.stats().connect_failures >= 1; });
  CHECK(ok);
  CHECK(a.transport.stats().frames_sent == 0);  // 48 MiB cannot fit in the socket buffers
  const auto start = std::chrono::steady_clock::now();
  co_await a.transport.close();
  const auto took = std::chrono::steady_clock::now() - start;
  CHECK(took < 2s);
  CHECK(a.transport.stats().frames_lost == 48);
  CHECK(a.transport.stats().frames_dropped == 2);
  ::close(*deaf);
}

// A transport handed to a new owner (the RecoveryBeacon's to the
// ClusterNode) keeps its listener and links: frames both ways go on over
// the same connections, and what comes in reaches the new handler only.
Task<void> hand_over_body() {
  Node a("127.0.0.1:0");
  Node b("127.0.0.2:0");
  a.transport.send(b.address, FrameType::membership, "before");
  b.transport.send(a.address, FrameType::membership, "before");
  CHECK(co_await wait_until([&] { return a.inbox.size() == 1 && b.inbox.size() == 1; }));
  const PeerStats opened_a = a.transport.stats();
  const PeerStats opened_b = b.transport.stats();
  std::vector<std::string> taken;
  a.transport.hand_over(
      [&taken](const PeerInfo&, FrameType, std::string_view payload) {
        taken.emplace_back(payload);
      },
      500ms);
  a.transport.send(b.address, FrameType::phaser, "after");
  b.transport.send(a.address, FrameType::phaser, "after");
  CHECK(co_await wait_until([&] { return taken.size() == 1 && b.inbox.size() == 2; }));
  CHECK(taken == std::vector<std::string>{"after"});
  CHECK(a.inbox.size() == 1);  // the first owner heard nothing more
  CHECK(b.from(a.address) == std::vector<std::string>{"before", "after"});
  // Over the same connections: none opened again on either side.
  CHECK(a.transport.stats().connects == opened_a.connects);
  CHECK(b.transport.stats().connects == opened_b.connects);
  co_await a.transport.close();
  co_await b.transport.close();
}

Task<void> stop_when(std::function<bool()> done, Loop& loop) {
  const bool ok = co_await wait_until(std::move(done));
  CHECK(ok);
  loop.request_stop();
}

}  // namespace

TEST_CASE("peer: three transports exchange many frames both ways, in order") {
  block_on(exchange_body());
}

TEST_CASE("peer: a peer of another cluster or protocol version is refused") {
  block_on(cluster_body());
}

TEST_CASE("peer: a corrupted or out-of-protocol stream closes its connection") {
  block_on(corrupted_body());
}

TEST_CASE("peer: a peer that is not listening yet is reached once it starts") {
  block_on(late_start_body());
}

TEST_CASE("peer: a peer that restarts on its address is reached again") {
  block_on(restart_body());
}

TEST_CASE("peer: a full queue drops the frames beyond it and counts them") {
  block_on(full_queue_body());
}

TEST_CASE("peer: close() with a blocked send and a reconnect timer does not hang") {
  block_on(close_pending_body());
}

TEST_CASE("peer: a transport handed over keeps its links; the new owner hears what comes") {
  block_on(hand_over_body());
}

TEST_CASE("peer: the loop's stop ends every task of transports never closed") {
  Loop loop(Loop::Config{});
  auto a = std::make_unique<Node>("127.0.0.1:0");
  auto b = std::make_unique<Node>("127.0.0.2:0");
  a->transport.send(b->address, FrameType::membership, "ping");
  b->transport.send(a->address, FrameType::membership, "pong");
  a->transport.send(unused_address("127.0.0.3"), FrameType::phaser, "nobody");  // backoff
  loop.spawn(stop_when([&] { return a->inbox.size() == 1 && b->inbox.size() == 1; }, loop));
  CHECK(loop.run() == 0);
  CHECK(a->inbox.size() == 1);
  CHECK(b->inbox.size() == 1);
  a.reset();  // asserts that none of its tasks still runs
  b.reset();
}
