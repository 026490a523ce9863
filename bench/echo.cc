// coworker-bench-echo: does the io_uring reactor serve a pipelined echo at
// least as fast as a plain epoll server?
//
// One binary, one client, two servers, alternating runs: the epoll server and
// the reactor server each run on one pinned thread (CPU 0) while the same
// reactor client (CPU 1) drives C connections, each keeping D requests of
// 64 bytes in flight (send D, read D answers, repeat). Throughput is requests
// answered per second; latency is per pipelined batch. The ratio printed is
// reactor / epoll, medians over the runs.
#include <fcntl.h>
#include <pthread.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "bench/histogram.h"
#include "reactor/buffer_ring.h"
#include "reactor/multishot.h"
#include "reactor/net.h"
#include "reactor/ops.h"

using namespace coworker;
using namespace coworker::reactor;
using Clock = std::chrono::steady_clock;

namespace {

struct Options {
  double seconds = 3;
  unsigned runs = 5;
  unsigned connections = 64;
  unsigned depth = 16;
  size_t message = 64;
};

double thread_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

void pin(unsigned cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu % std::max(1u, std::thread::hardware_concurrency()), &set);
  pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
}

// ---- the epoll server -------------------------------------------------------

struct EpollConnection {
  int fd;
  std::vector<char> pending;  // bytes read but not yet written back
};

void epoll_server(int listener, int stop_fd, double* cpu) {
  pin(0);
  const double cpu_start = thread_cpu_seconds();
  const int ep = epoll_create1(EPOLL_CLOEXEC);
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.ptr = nullptr;
  epoll_ctl(ep, EPOLL_CTL_ADD, listener, &ev);
  ev.data.ptr = &stop_fd;
  epoll_ctl(ep, EPOLL_CTL_ADD, stop_fd, &ev);
  std::vector<EpollConnection*> all;
  std::vector<char> buffer(64 << 10);
  epoll_event events[256];
  for (bool running = true; running;) {
    const int n = epoll_wait(ep, events, 256, -1);
    for (int i = 0; i < n; i++) {
      void* tag = events[i].data.ptr;
      if (tag == &stop_fd) {
        running = false;
      } else if (tag == nullptr) {
        for (;;) {
          const int fd = accept4(listener, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
          if (fd < 0) break;
          set_nodelay(fd);
          auto* c = new EpollConnection{fd, {}};
          all.push_back(c);
          epoll_event cev{};
          cev.events = EPOLLIN;
          cev.data.ptr = c;
          epoll_ctl(ep, EPOLL_CTL_ADD, fd, &cev);
        }
      } else {
        auto* c = static_cast<EpollConnection*>(tag);
        if (events[i].events & EPOLLOUT) {
          const ssize_t w = write(c->fd, c->pending.data(), c->pending.size());
          if (w > 0) c->pending.erase(c->pending.begin(), c->pending.begin() + w);
          if (c->pending.empty()) {
            epoll_event cev{};
            cev.events = EPOLLIN;
            cev.data.ptr = c;
            epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &cev);
          }
          continue;
        }
        const ssize_t r = read(c->fd, buffer.data(), buffer.size());
        if (r <= 0) {
          epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, nullptr);
          close(c->fd);
          c->fd = -1;
          continue;
        }
        ssize_t w = write(c->fd, buffer.data(), static_cast<size_t>(r));
        if (w < 0) w = 0;
        if (w < r) {
          c->pending.insert(c->pending.end(), buffer.data() + w, buffer.data() + r);
          epoll_event cev{};
          cev.events = EPOLLOUT;
          cev.data.ptr = c;
          epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &cev);
        }
      }
    }
  }
  *cpu = thread_cpu_seconds() - cpu_start;
  for (EpollConnection* c : all) {
    if (c->fd >= 0) close(c->fd);
    delete c;
  }
  close(ep);
}

// ---- the reactor server -----------------------------------------------------

Task<void> reactor_connection(int fd) {
  std::vector<char> buffer(64 << 10);
  for (;;) {
    Result<size_t> n = co_await Recv{fd, buffer};
    if (!n || *n == 0) break;
    Result<size_t> sent = co_await Send{fd, std::span<const char>(buffer.data(), *n)};
    if (!sent) break;
  }
  (void)co_await Close{fd};
}

// The same echo with multishot recv into provided buffers: one armed recv
// per connection instead of one submission per recv.
Task<void> multishot_connection(int fd, BufferRing* buffers) {
  MultishotRecv receiver(fd, buffers, 64);
  for (;;) {
    Result<MultishotRecv::Chunk> chunk = co_await receiver.next();
    if (!chunk || chunk->length == 0) break;
    Result<size_t> sent = co_await Send{fd, receiver.data(*chunk)};
    receiver.recycle(*chunk);
    if (!sent) break;
  }
  co_await receiver.close();
  (void)co_await Close{fd};
}

Task<void> reactor_accept(int listener, bool multishot) {
  std::unique_ptr<BufferRing> buffers;
  if (multishot) {
    auto created = BufferRing::create(1024, 16 << 10);
    COWORKER_ASSERT(created.ok());
    buffers = std::move(*created);
  }
  MultishotAccept acceptor(listener);
  for (;;) {
    Result<int> fd = co_await acceptor.next();
    if (!fd) break;  // cancelled by stop
    set_nodelay(*fd);
    if (multishot) {
      Loop::current().spawn(multishot_connection(*fd, buffers.get()));
    } else {
      Loop::current().spawn(reactor_connection(*fd));
    }
  }
  co_await acceptor.close();
  // Connections end with the stop too; the ring must outlive them.
  while (Loop::current().spawned() > 1) co_await Yield{};
}

void reactor_server(int listener, bool multishot, std::atomic<Loop*>* published, double* cpu) {
  pin(0);
  const double cpu_start = thread_cpu_seconds();
  Loop loop(Loop::Config{});
  loop.spawn(reactor_accept(listener, multishot));
  published->store(&loop);
  loop.run();
  *cpu = thread_cpu_seconds() - cpu_start;
}

// ---- the client ----------------------------------------------------------------

struct ClientResult {
  uint64_t requests = 0;
  bench::Histogram latency;
};

Task<void> client_connection(Endpoint server, Options options, const bool* stop,
                             ClientResult* result, unsigned* open) {
  Result<int> fd = co_await connect_tcp(server, nullptr, Milliseconds{2000});
  COWORKER_ASSERT(fd.ok());
  std::vector<char> out(options.message * options.depth, 'e');
  std::vector<char> in(out.size());
  while (!*stop) {
    const auto start = Clock::now();
    Result<size_t> sent = co_await Send{*fd, out};
    if (!sent) break;
    size_t have = 0;
    while (have < in.size()) {
      Result<size_t> n = co_await Recv{*fd, std::span<char>(in).subspan(have)};
      if (!n || *n == 0) break;
      have += *n;
    }
    if (have < in.size()) break;
    result->latency.record(static_cast<uint64_t>((Clock::now() - start).count()));
    result->requests += options.depth;
  }
  (void)co_await Close{*fd};
  (*open)--;
}

ClientResult drive(Endpoint server, const Options& options) {
  pin(1);
  Loop loop(Loop::Config{});
  ClientResult result;
  bool stop = false;
  unsigned open = options.connections;
  for (unsigned i = 0; i < options.connections; i++) {
    loop.spawn(client_connection(server, options, &stop, &result, &open));
  }
  auto timer = [](Options options, bool* stop, unsigned* open, Loop* loop) -> Task<void> {
    (void)co_await Timeout{Milliseconds{static_cast<int64_t>(options.seconds * 1000)}};
    *stop = true;
    while (*open > 0) co_await Yield{};
    loop->request_stop();
  };
  loop.spawn(timer(options, &stop, &open, &loop));
  const auto start = Clock::now();
  loop.run();
  const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  result.requests = static_cast<uint64_t>(static_cast<double>(result.requests) / elapsed);
  return result;
}

struct Sample {
  double per_second;
  double per_cpu_second;  // requests per second of server CPU
  double p50_us;
  double p99_us;
};

enum class Server { epoll, reactor, multishot };

Sample run_once(Server kind, const Options& options) {
  Result<int> listener = listen_tcp(*Endpoint::parse("127.0.0.1:0"), ReusePort::no);
  COWORKER_ASSERT(listener.ok());
  const Endpoint where = *local_endpoint(*listener);
  ClientResult result;
  double cpu = 0;
  if (kind != Server::epoll) {
    std::atomic<Loop*> server{nullptr};
    std::thread thread(reactor_server, *listener, kind == Server::multishot, &server, &cpu);
    while (server.load() == nullptr) std::this_thread::yield();
    result = drive(where, options);
    server.load()->request_stop();
    thread.join();
  } else {
    const int stop_fd = eventfd(0, EFD_CLOEXEC);
    std::thread thread(epoll_server, *listener, stop_fd, &cpu);
    result = drive(where, options);
    const uint64_t one = 1;
    (void)!write(stop_fd, &one, sizeof(one));
    thread.join();
    close(stop_fd);
  }
  close(*listener);
  const double total = static_cast<double>(result.requests) * options.seconds;
  return Sample{static_cast<double>(result.requests), cpu > 0 ? total / cpu : 0,
                static_cast<double>(result.latency.quantile(0.5)) / 1000.0,
                static_cast<double>(result.latency.quantile(0.99)) / 1000.0};
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

void usage() {
  std::printf(
      "usage: coworker-bench-echo [--seconds S] [--runs N] [--connections C] [--depth D]\n"
      "\n"
      "Pipelined 64-byte echo over loopback: the io_uring reactor server (plain recv,\n"
      "and multishot recv into provided buffers) against a plain epoll server, same\n"
      "client, alternating runs; prints medians and the reactor/epoll ratios.\n"
      "Defaults: 3 s, 5 runs, 64 connections, depth 16.\n");
}

}  // namespace

int main(int argc, char** argv) {
  Options options;
  for (int i = 1; i < argc; i++) {
    const std::string arg = argv[i];
    auto next = [&]() -> const char* {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "coworker-bench-echo: %s needs a value\n", arg.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (arg == "--help" || arg == "-h") {
      usage();
      return 0;
    } else if (arg == "--seconds") {
      options.seconds = std::atof(next());
    } else if (arg == "--runs") {
      options.runs = static_cast<unsigned>(std::atoi(next()));
    } else if (arg == "--connections") {
      options.connections = static_cast<unsigned>(std::atoi(next()));
    } else if (arg == "--depth") {
      options.depth = static_cast<unsigned>(std::atoi(next()));
    } else {
      std::fprintf(stderr, "coworker-bench-echo: unknown argument %s (try --help)\n",
                   arg.c_str());
      return 2;
    }
  }
  if (options.seconds <= 0 || options.runs == 0 || options.connections == 0 ||
      options.depth == 0) {
    std::fprintf(stderr, "coworker-bench-echo: every value must be positive\n");
    return 2;
  }
  std::printf("echo: %u connections x depth %u x %zu bytes, %.1f s per run, %u runs, "
              "server on CPU 0, client on CPU 1\n",
              options.connections, options.depth, options.message, options.seconds, options.runs);
  const char* names[] = {"epoll", "reactor", "multishot"};
  std::vector<double> rate[3], cpu[3], p50[3], p99[3];
  for (unsigned run = 0; run < options.runs; run++) {
    std::printf("run %u:", run + 1);
    for (int k = 0; k < 3; k++) {
      Sample sample = run_once(static_cast<Server>(k), options);
      std::printf("  %s %.0f req/s (%.0f per CPU-s, p99 %.0f us)", names[k], sample.per_second,
                  sample.per_cpu_second, sample.p99_us);
      rate[k].push_back(sample.per_second);
      cpu[k].push_back(sample.per_cpu_second);
      p50[k].push_back(sample.p50_us);
      p99[k].push_back(sample.p99_us);
    }
    std::printf("\n");
  }
  for (int k = 0; k < 3; k++) {
    std::printf("median %-9s %9.0f req/s  %9.0f per CPU-s  p50 %5.0f us  p99 %5.0f us\n",
                names[k], median(rate[k]), median(cpu[k]), median(p50[k]), median(p99[k]));
  }
  for (int k = 1; k < 3; k++) {
    std::printf("ratio %s/epoll: %.2fx throughput, %.2fx requests per server CPU-second\n",
                names[k], median(rate[k]) / median(rate[0]), median(cpu[k]) / median(cpu[0]));
  }
  return 0;
}
