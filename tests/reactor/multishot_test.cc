// Multishot accept and multishot recv into a provided buffer ring, against
// real loopback sockets: ordering, ENOBUFS and re-arming, pausing, close and
// stop. Skips (saying why) where the kernel lacks the feature.
#include <doctest/doctest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <vector>

#include "reactor/block_on.h"
#include "reactor/multishot.h"
#include "reactor/net.h"
#include "reactor/sync.h"

using namespace coworker;
using namespace coworker::reactor;
using namespace std::chrono_literals;

namespace {

Endpoint loopback_any() { return *Endpoint::parse("127.0.0.1:0"); }

bool has_recv_multishot() {
  Loop loop(Loop::Config{});
  return loop.ring().features().recv_multishot;
}

struct Pair {
  int server = -1;
  int client = -1;
};

Task<Pair> connected_pair() {
  Result<int> listener = listen_tcp(loopback_any(), ReusePort::no);
  COWORKER_ASSERT(listener.ok());
  Endpoint where = *local_endpoint(*listener);
  Result<int> client = co_await connect_tcp(where, nullptr, 2000ms);
  COWORKER_ASSERT(client.ok());
  Result<int> server = co_await Accept{*listener};
  COWORKER_ASSERT(server.ok());
  ::close(*listener);
  co_return Pair{*server, *client};
}

// Reads everything until EOF through a MultishotRecv, recycling each buffer
// right after copying it out.
Task<std::string> read_all(MultishotRecv& recv) {
  std::string out;
  for (;;) {
    Result<MultishotRecv::Chunk> chunk = co_await recv.next();
    COWORKER_ASSERT(chunk.ok());
    if (chunk->length == 0) break;
    std::span<const char> bytes = recv.data(*chunk);
    out.append(bytes.data(), bytes.size());
    recv.recycle(*chunk);
  }
  co_await recv.close();
  co_return out;
}

std::string pattern(size_t size) {
  std::string s(size, '\0');
  for (size_t i = 0; i < size; i++) s[i] = static_cast<char>('a' + (i * 7) % 26);
  return s;
}

}  // namespace

TEST_CASE("multishot: accept queues every connection for the reader") {
  const size_t accepted = block_on([]() -> Task<size_t> {
    Result<int> listener = listen_tcp(loopback_any(), ReusePort::no);
    COWORKER_ASSERT(listener.ok());
    const Endpoint where = *local_endpoint(*listener);
    MultishotAccept accept(*listener);
    constexpr size_t clients = 50;
    std::vector<int> outgoing;
    size_t got = 0;
    for (size_t i = 0; i < clients; i++) {
      Result<int> c = co_await connect_tcp(where, nullptr, 2000ms);
      COWORKER_ASSERT(c.ok());
      outgoing.push_back(*c);
    }
    while (got < clients) {
      Result<int> fd = co_await accept.next();
      COWORKER_ASSERT(fd.ok());
      ::close(*fd);
      got++;
    }
    co_await accept.close();
    COWORKER_ASSERT(!accept.armed());
    for (int fd : outgoing) ::close(fd);
    ::close(*listener);
    co_return got;
  }());
  CHECK(accepted == 50);
}

TEST_CASE("multishot: recv delivers a stream in order across buffer sizes and pauses") {
  if (!has_recv_multishot()) {
    MESSAGE("skipped: this kernel has no multishot recv with provided buffers");
    return;
  }
  // Sweep: buffer size x buffer count x queue bound (liburing recv-multishot.c).
  for (unsigned bits = 0; bits < 8; bits++) {
    const uint32_t size = (bits & 1) ? 4096 : 16;
    const uint16_t count = (bits & 2) ? 64 : 2;
    const size_t queued_max = (bits & 4) ? 8 : 1;
    CAPTURE(size);
    CAPTURE(count);
    CAPTURE(queued_max);
    const std::string sent = pattern(200000);
    const std::string got = block_on([](const std::string* sent, uint32_t size, uint16_t count,
                                        size_t queued_max) -> Task<std::string> {
      Result<std::unique_ptr<BufferRing>> ring = BufferRing::create(count, size);
      COWORKER_ASSERT(ring.ok());
      Pair pair = co_await connected_pair();
      Loop::current().spawn([](int fd, const std::string* sent) -> Task<void> {
        // Many small sends, so that completions interleave with reading.
        for (size_t at = 0; at < sent->size(); at += 5000) {
          Result<size_t> n = co_await Send{fd, std::string_view(*sent).substr(at, 5000)};
          COWORKER_ASSERT(n.ok());
        }
        (void)co_await Close{fd};
      }(pair.client, sent));
      MultishotRecv recv(pair.server, ring->get(), queued_max);
      std::string out = co_await read_all(recv);
      COWORKER_ASSERT((*ring)->available() == count);  // every buffer came back
      (void)co_await Close{pair.server};
      co_return out;
    }(&sent, size, count, queued_max));
    CHECK(got.size() == sent.size());
    CHECK(got == sent);
  }
}

TEST_CASE("multishot: a connection that starves the ring recovers once buffers return") {
  if (!has_recv_multishot()) {
    MESSAGE("skipped: this kernel has no multishot recv with provided buffers");
    return;
  }
  // Two receivers share a 2-buffer ring; the first holds both buffers until
  // the second has hit ENOBUFS, then gives them back.
  const std::string got = block_on([]() -> Task<std::string> {
    Result<std::unique_ptr<BufferRing>> ring = BufferRing::create(2, 64);
    COWORKER_ASSERT(ring.ok());
    Pair a = co_await connected_pair();
    Pair b = co_await connected_pair();
    MultishotRecv ra(a.server, ring->get(), 8);
    MultishotRecv rb(b.server, ring->get(), 8);
    const std::string big(128, 'A');
    (void)co_await Send{a.client, big};
    std::vector<MultishotRecv::Chunk> held;
    size_t have = 0;
    while (have < big.size()) {
      Result<MultishotRecv::Chunk> chunk = co_await ra.next();
      COWORKER_ASSERT(chunk.ok() && chunk->length > 0);
      held.push_back(*chunk);
      have += chunk->length;
    }
    COWORKER_ASSERT((*ring)->available() == 0);
    (void)co_await Send{b.client, std::string_view("hello")};
    // rb arms, finds no buffer (ENOBUFS) and waits; recycling re-arms it.
    Loop::current().spawn([](MultishotRecv* ra, std::vector<MultishotRecv::Chunk>* held)
                              -> Task<void> {
      for (int i = 0; i < 10; i++) co_await Yield{};
      for (const auto& c : *held) ra->recycle(c);
    }(&ra, &held));
    Result<MultishotRecv::Chunk> chunk = co_await rb.next();
    COWORKER_ASSERT(chunk.ok());
    std::span<const char> bytes = rb.data(*chunk);
    std::string out(bytes.data(), bytes.size());
    rb.recycle(*chunk);
    co_await ra.close();
    co_await rb.close();
    COWORKER_ASSERT((*ring)->available() == 2);
    for (int fd : {a.server, a.client, b.server, b.client}) ::close(fd);
    co_return out;
  }());
  CHECK(got == "hello");
}

TEST_CASE("multishot: close cancels an armed recv and waits for its final completion") {
  if (!has_recv_multishot()) {
    MESSAGE("skipped: this kernel has no multishot recv with provided buffers");
    return;
  }
  const bool ok = block_on([]() -> Task<bool> {
    Result<std::unique_ptr<BufferRing>> ring = BufferRing::create(4, 256);
    COWORKER_ASSERT(ring.ok());
    Pair pair = co_await connected_pair();
    Result<MultishotRecv::Chunk> outcome = Errno{0};
    {
      MultishotRecv recv(pair.server, ring->get());
      TaskGroup reader;
      reader.spawn([](MultishotRecv* recv, Result<MultishotRecv::Chunk>* out) -> Task<void> {
        *out = co_await recv->next();
      }(&recv, &outcome));
      co_await Yield{};
      co_await Yield{};
      COWORKER_ASSERT(recv.armed());
      co_await recv.close();
      COWORKER_ASSERT(!recv.armed());
      co_await reader.join();
    }  // destroyed only after its final completion
    ::close(pair.server);
    ::close(pair.client);
    co_return !outcome.ok() && outcome.error().code == ECANCELED;
  }());
  CHECK(ok);
}

TEST_CASE("multishot: stopping the loop cancels armed accept and recv") {
  Loop loop(Loop::Config{});
  int cancelled = 0;
  loop.spawn([](int* cancelled) -> Task<void> {
    Result<int> listener = listen_tcp(loopback_any(), ReusePort::no);
    COWORKER_ASSERT(listener.ok());
    MultishotAccept accept(*listener);
    Result<int> fd = co_await accept.next();
    if (!fd.ok() && fd.error().code == ECANCELED) (*cancelled)++;
    co_await accept.close();
    ::close(*listener);
  }(&cancelled));
  loop.spawn([](Loop* loop) -> Task<void> {
    for (int i = 0; i < 5; i++) co_await Yield{};
    loop->request_stop(0);
  }(&loop));
  CHECK(loop.run() == 0);
  CHECK(cancelled == 1);
}
