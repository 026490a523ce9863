// Every ring set-up the fallback chain can end in, and both doorbell paths,
// must work on their own: the kernel here has the best of everything, so the
// fallbacks are forced (liburing test style: sweep the flag combinations).
#include <doctest/doctest.h>
#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <string>
#include <vector>

#include "reactor/block_on.h"
#include "reactor/net.h"
#include "reactor/ops.h"
#include "reactor/smp.h"
#include "reactor/sync.h"

using namespace coworker;
using namespace coworker::reactor;
using namespace std::chrono_literals;

namespace {

const char* name(RingMode mode) {
  switch (mode) {
    case RingMode::best: return "best";
    case RingMode::coop_taskrun: return "coop_taskrun";
    case RingMode::plain: return "plain";
  }
  return "?";
}

// A round trip over loopback, a deadline, a file write+sync+read, and a
// close that cancels a pending recv: the ops a server depends on.
Task<std::string> exercise() {
  Result<int> listener = listen_tcp(*Endpoint::parse("127.0.0.1:0"), ReusePort::no);
  COWORKER_ASSERT(listener.ok());
  const Endpoint where = *local_endpoint(*listener);
  Result<int> client = co_await connect_tcp(where, nullptr, 2000ms);
  COWORKER_ASSERT(client.ok());
  Result<int> server = co_await Accept{*listener};
  COWORKER_ASSERT(server.ok());
  ::close(*listener);

  const std::string hello = "ping";
  COWORKER_ASSERT((co_await Send{*client, hello}).ok());
  std::string got(hello.size(), '\0');
  Result<size_t> n = co_await Recv{*server, got};
  COWORKER_ASSERT(n.ok() && *n == hello.size());

  char spare[8];
  Result<size_t> timed_out = co_await Recv{*server, spare, 10ms};
  COWORKER_ASSERT(!timed_out.ok() && timed_out.error().code == ETIMEDOUT);

  char path[] = "/tmp/coworker-modes-XXXXXX";
  const int fd = ::mkstemp(path);
  COWORKER_ASSERT(fd >= 0);
  ::unlink(path);
  COWORKER_ASSERT((co_await Write{fd, got, 0}).ok());
  COWORKER_ASSERT((co_await Fsync{fd}).ok());
  std::string back(4, '\0');
  COWORKER_ASSERT((co_await Read{fd, back, 0}).ok());
  ::close(fd);

  Result<size_t> cancelled = Errno{0};
  TaskGroup reader;
  reader.spawn([](int fd, Result<size_t>* out) -> Task<void> {
    char buffer[8];
    *out = co_await Recv{fd, buffer};
  }(*server, &cancelled));
  co_await Yield{};
  COWORKER_ASSERT((co_await Close{*server}).ok());
  co_await reader.join();
  COWORKER_ASSERT(!cancelled.ok() && cancelled.error().code == ECANCELED);
  (void)co_await Close{*client};
  co_return back;
}

}  // namespace

TEST_CASE("modes: every ring set-up in the fallback chain runs the ops") {
  for (RingMode mode : {RingMode::best, RingMode::coop_taskrun, RingMode::plain}) {
    CAPTURE(name(mode));
    Loop::Config config;
    config.ring_mode = mode;
    CHECK(block_on(exercise(), config) == "ping");
  }
}

TEST_CASE("modes: cross-core calls wake sleeping cores by MSG_RING and by eventfd") {
  for (RingMode mode : {RingMode::best, RingMode::coop_taskrun, RingMode::plain}) {
    for (bool msg_ring : {true, false}) {
      CAPTURE(name(mode));
      CAPTURE(msg_ring);
      Smp::Config config{2, false};
      config.ring_mode = mode;
      config.msg_ring_doorbells = msg_ring;
      Smp smp(config);
      std::atomic<int> answered{0};
      smp.run([&](unsigned core) -> Task<void> {
        return [](unsigned core, std::atomic<int>* answered, Smp* smp) -> Task<void> {
          if (core != 0) co_return;
          // One call at a time, with a pause between: core 1 goes to sleep
          // each time, so every call needs a doorbell to be answered.
          for (int i = 0; i < 50; i++) {
            int v = co_await submit_to(1, [i] { return i * 2; });
            COWORKER_ASSERT(v == i * 2);
            (*answered)++;
            COWORKER_ASSERT((co_await Timeout{1ms}).ok());
          }
          smp->request_stop(0);
        }(core, &answered, &smp);
      });
      CHECK(answered == 50);
      CHECK(smp.stats(0).doorbells > 0);
    }
  }
}

TEST_CASE("modes: each forced mode really sets up the ring it names") {
  for (RingMode mode : {RingMode::best, RingMode::coop_taskrun, RingMode::plain}) {
    CAPTURE(name(mode));
    Loop::Config config;
    config.ring_mode = mode;
    Loop loop(config);
    const RingFeatures& f = loop.ring().features();
    if (mode == RingMode::coop_taskrun) {
      CHECK(f.coop_taskrun);
      CHECK(!f.defer_taskrun);
    }
    if (mode == RingMode::plain) {
      CHECK(!f.coop_taskrun);
      CHECK(!f.defer_taskrun);
    }
    if (mode == RingMode::best && !f.defer_taskrun) {
      MESSAGE("this kernel lacks DEFER_TASKRUN; best fell back to "
              << (f.coop_taskrun ? "COOP_TASKRUN" : "a plain ring"));
    }
  }
}
