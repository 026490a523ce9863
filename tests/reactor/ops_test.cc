// Every awaitable against real loopback sockets and real files.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <string>
#include <vector>

#include "reactor/block_on.h"
#include "reactor/net.h"
#include "reactor/ops.h"
#include "reactor/sync.h"

using namespace coworker;
using namespace coworker::reactor;
using namespace std::chrono_literals;

namespace {

Endpoint loopback_any() { return *Endpoint::parse("127.0.0.1:0"); }

struct Pair {
  int server = -1;
  int client = -1;
};

// A connected pair of sockets through a real listener.
Task<Pair> connected_pair() {
  Result<int> listener = listen_tcp(loopback_any(), ReusePort::no);
  COWORKER_ASSERT(listener.ok());
  Endpoint where = *local_endpoint(*listener);
  Task<Result<int>> connecting = connect_tcp(where, nullptr, 2000ms);
  Result<int> client = co_await std::move(connecting);
  COWORKER_ASSERT(client.ok());
  Result<int> server = co_await Accept{*listener};
  COWORKER_ASSERT(server.ok());
  ::close(*listener);
  co_return Pair{*server, *client};
}

Task<size_t> drain(int fd, size_t chunk) {
  std::vector<char> buffer(chunk);
  size_t total = 0;
  for (;;) {
    Result<size_t> n = co_await Recv{fd, buffer};
    if (!n || *n == 0) co_return total;
    total += *n;
  }
}

}  // namespace

TEST_CASE("ops: timeout sleeps at least its duration") {
  const auto start = std::chrono::steady_clock::now();
  Status slept = block_on([]() -> Task<Status> { co_return co_await Timeout{20ms}; }());
  CHECK(slept.ok());
  CHECK(std::chrono::steady_clock::now() - start >= 20ms);
}

TEST_CASE("ops: accept, connect, send and recv over loopback") {
  std::string got = block_on([]() -> Task<std::string> {
    Pair pair = co_await connected_pair();
    const std::string message = "hello, coworker";
    Result<size_t> sent = co_await Send{pair.client, message};
    COWORKER_ASSERT(sent.ok());
    std::string out(message.size(), '\0');
    size_t have = 0;
    while (have < out.size()) {
      Result<size_t> n = co_await Recv{pair.server, std::span<char>(out).subspan(have)};
      COWORKER_ASSERT(n.ok() && *n > 0);
      have += *n;
    }
    (void)co_await Close{pair.client};
    (void)co_await Close{pair.server};
    co_return out;
  }());
  CHECK(got == "hello, coworker");
}

TEST_CASE("ops: a send far larger than the socket buffer arrives whole") {
  // On Linux 6.x io_uring itself retries short sends on stream sockets; the
  // op's own continuation is shown on a pipe below.
  constexpr size_t size = 2 << 20;
  size_t received = block_on([]() -> Task<size_t> {
    Pair pair = co_await connected_pair();
    const int small = 4096;
    ::setsockopt(pair.client, SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
    Loop::current().spawn([](int fd) -> Task<void> {
      std::vector<char> big(size, 'x');
      Result<size_t> sent = co_await Send{fd, big};
      COWORKER_ASSERT(sent.ok() && *sent == size);
      (void)co_await Close{fd};
    }(pair.client));
    size_t total = co_await drain(pair.server, 1000);
    (void)co_await Close{pair.server};
    co_return total;
  }());
  CHECK(received == size);
}

TEST_CASE("ops: a write continues after short writes") {
  // A pipe holds 64 KiB: a 1 MiB write completes short again and again, and
  // the op resubmits the rest each time.
  int fds[2];
  REQUIRE(::pipe2(fds, O_CLOEXEC | O_NONBLOCK) == 0);
  constexpr size_t size = 1 << 20;
  uint64_t completions = 0;
  size_t got = block_on([](int in, int out, uint64_t* completions) -> Task<size_t> {
    size_t written = 0;
    Loop::current().spawn([](int fd, size_t* written) -> Task<void> {
      std::vector<char> big(size);
      for (size_t i = 0; i < size; i++) big[i] = static_cast<char>(i % 251);
      Result<size_t> n = co_await Write{fd, big, 0};
      COWORKER_ASSERT(n.ok());
      *written = *n;
      ::close(fd);
    }(out, &written));
    std::vector<char> buffer(size + 1);
    size_t total = 0;
    for (;;) {
      Result<size_t> n = co_await Read{in, std::span<char>(buffer).subspan(total, 4096), 0};
      COWORKER_ASSERT(n.ok());
      if (*n == 0) break;
      total += *n;
    }
    for (size_t i = 0; i < total; i++) COWORKER_ASSERT(buffer[i] == static_cast<char>(i % 251));
    COWORKER_ASSERT(written == size);
    *completions = Loop::current().stats().completions;
    co_return total;
  }(fds[0], fds[1], &completions));
  ::close(fds[0]);
  CHECK(got == size);
  // 256 reads of 4 KiB; the rest are the writer's partial completions.
  CHECK(completions > size / 4096 + 8);
}

TEST_CASE("ops: sendmsg sends every iovec") {
  size_t received = block_on([]() -> Task<size_t> {
    Pair pair = co_await connected_pair();
    const int small = 4096;
    ::setsockopt(pair.client, SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
    Loop::current().spawn([](int fd) -> Task<void> {
      std::vector<std::vector<char>> parts;
      std::vector<iovec> iov;
      for (size_t i = 0; i < 64; i++) parts.emplace_back(10000 + i, 'y');
      for (auto& part : parts) iov.push_back(iovec{part.data(), part.size()});
      Result<size_t> sent = co_await SendMsg{fd, iov};
      COWORKER_ASSERT(sent.ok());
      (void)co_await Close{fd};
    }(pair.client));
    size_t total = co_await drain(pair.server, 65536);
    (void)co_await Close{pair.server};
    co_return total;
  }());
  CHECK(received == 64 * 10000 + 63 * 64 / 2);
}

TEST_CASE("ops: sendmsg continues a short send from the right iovec and offset") {
  // The kernel rarely returns short sends on stream sockets (io_uring retries
  // them); drive the continuation directly.
  char a[10], b[20], c[30];
  iovec iov[3] = {{a, sizeof(a)}, {b, sizeof(b)}, {c, sizeof(c)}};
  SendMsg op{-1, iov};
  CHECK(op.resubmit(15));  // all of a, 5 bytes of b
  CHECK(iov[1].iov_base == b + 5);
  CHECK(iov[1].iov_len == 15);
  CHECK(op.resubmit(15));  // the rest of b
  CHECK(op.resubmit(29));  // all but the last byte of c
  CHECK(iov[2].iov_base == c + 29);
  CHECK(iov[2].iov_len == 1);
  CHECK(!op.resubmit(1));  // done
}

TEST_CASE("ops: a peer reset is an error value") {
  Result<size_t> r = block_on([]() -> Task<Result<size_t>> {
    Pair pair = co_await connected_pair();
    linger hard{1, 0};  // close sends RST
    ::setsockopt(pair.client, SOL_SOCKET, SO_LINGER, &hard, sizeof(hard));
    ::close(pair.client);
    char buffer[16];
    Result<size_t> n = co_await Recv{pair.server, buffer};
    (void)co_await Close{pair.server};
    co_return n;
  }());
  REQUIRE(!r.ok());
  CHECK(r.error().code == ECONNRESET);
}

TEST_CASE("ops: connect to a closed port is refused") {
  Result<int> r = block_on([]() -> Task<Result<int>> {
    Result<int> listener = listen_tcp(loopback_any(), ReusePort::no);
    COWORKER_ASSERT(listener.ok());
    Endpoint where = *local_endpoint(*listener);
    ::close(*listener);
    co_return co_await connect_tcp(where, nullptr, 2000ms);
  }());
  REQUIRE(!r.ok());
  CHECK(r.error().code == ECONNREFUSED);
}

TEST_CASE("ops: a recv deadline fires as ETIMEDOUT") {
  Result<size_t> r = block_on([]() -> Task<Result<size_t>> {
    Pair pair = co_await connected_pair();
    char buffer[16];
    Result<size_t> n = co_await Recv{pair.server, buffer, 30ms};
    (void)co_await Close{pair.client};
    (void)co_await Close{pair.server};
    co_return n;
  }());
  REQUIRE(!r.ok());
  CHECK(r.error().code == ETIMEDOUT);
}

TEST_CASE("ops: a send deadline fires when the peer stops reading") {
  Result<size_t> r = block_on([]() -> Task<Result<size_t>> {
    Pair pair = co_await connected_pair();
    std::vector<char> big(64 << 20, 'z');  // far beyond both socket buffers
    Result<size_t> n = co_await Send{pair.client, big, 50ms};
    (void)co_await Close{pair.client};
    (void)co_await Close{pair.server};
    co_return n;
  }());
  REQUIRE(!r.ok());
  CHECK(r.error().code == ETIMEDOUT);
}

TEST_CASE("ops: closing a socket cancels the recv pending on it") {
  Result<size_t> r = block_on([]() -> Task<Result<size_t>> {
    Pair pair = co_await connected_pair();
    Result<size_t> outcome = Errno{0};
    TaskGroup reader;
    reader.spawn([](int fd, Result<size_t>* out) -> Task<void> {
      char buffer[16];
      *out = co_await Recv{fd, buffer};
    }(pair.server, &outcome));
    co_await Yield{};  // the reader runs and submits its recv first
    Status closed = co_await Close{pair.server};
    COWORKER_ASSERT(closed.ok());
    co_await reader.join();
    (void)co_await Close{pair.client};
    co_return outcome;
  }());
  REQUIRE(!r.ok());
  CHECK(r.error().code == ECANCELED);
}

TEST_CASE("ops: stopping the loop cancels waiting ops and drains spawned tasks") {
  Loop loop(Loop::Config{});
  int finished = 0;
  Event receiving;
  Result<size_t> outcome = Errno{0};
  auto body = [](Result<size_t>* out, int* finished, Event* receiving) -> Task<void> {
    Pair pair = co_await connected_pair();
    char buffer[16];
    receiving->set();
    *out = co_await Recv{pair.server, buffer};  // nothing ever arrives
    ::close(pair.server);
    ::close(pair.client);
    (*finished)++;
  };
  loop.spawn(body(&outcome, &finished, &receiving));
  loop.spawn([](int* finished) -> Task<void> {
    Status slept = co_await Timeout{std::chrono::hours(1)};
    COWORKER_ASSERT(!slept.ok());
    (*finished)++;
  }(&finished));
  loop.spawn([](Loop* loop, Event* receiving) -> Task<void> {
    Status ready = co_await receiving->wait();
    COWORKER_ASSERT(ready.ok());
    loop->request_stop(3);
  }(&loop, &receiving));
  CHECK(loop.run() == 3);
  CHECK(finished == 2);
  CHECK(loop.spawned() == 0);
  REQUIRE(!outcome.ok());
  CHECK(outcome.error().code == ECANCELED);
}

TEST_CASE("ops: write, fdatasync and read a real file") {
  char path[] = "/tmp/coworker-ops-XXXXXX";
  const int fd = ::mkstemp(path);
  REQUIRE(fd >= 0);
  ::unlink(path);
  std::string back = block_on([](int fd) -> Task<std::string> {
    std::string data(1 << 20, '\0');
    for (size_t i = 0; i < data.size(); i++) data[i] = static_cast<char>('a' + i % 26);
    Result<size_t> wrote = co_await Write{fd, data, 4096};
    COWORKER_ASSERT(wrote.ok() && *wrote == data.size());
    Status synced = co_await Fsync{fd};
    COWORKER_ASSERT(synced.ok());
    Status full = co_await Fsync{fd, SyncData::all};
    COWORKER_ASSERT(full.ok());
    std::string out(data.size() + 1000, '\0');  // asks past the end of file
    Result<size_t> read = co_await Read{fd, out, 4096};
    COWORKER_ASSERT(read.ok());
    COWORKER_ASSERT(*read == data.size());
    out.resize(*read);
    COWORKER_ASSERT(out == data);
    co_return out.substr(0, 4);
  }(fd));
  CHECK(back == "abcd");
  ::close(fd);
}

TEST_CASE("ops: io errors on files are values") {
  const int fd = ::open("/dev/full", O_WRONLY | O_CLOEXEC);  // every write: ENOSPC
  REQUIRE(fd >= 0);
  Result<size_t> r = block_on([](int fd) -> Task<Result<size_t>> {
    const char data[4] = {1, 2, 3, 4};
    co_return co_await Write{fd, data, 0};
  }(fd));
  ::close(fd);
  REQUIRE(!r.ok());
  CHECK(r.error().code == ENOSPC);
}
