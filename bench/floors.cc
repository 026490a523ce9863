// coworker-bench-floors: what do this machine's disk and loopback put under any
// durable, replicated append? (issue 18: the floors beside the comparison)
//
//   build/bin/coworker-bench-floors [--dir DIR] [--seconds S] [--json]
//
// Two loops, one after the other, each for S seconds (default 2), every
// iteration timed on its own:
//   disk  one 4 KiB pwrite + fdatasync, sequentially through a file in DIR
//         (default /var/tmp) preallocated with fallocate like a log segment,
//         wrapping at its end;
//   rtt   one 64-byte send and the 64 bytes back over a loopback TCP
//         connection (TCP_NODELAY, blocking sockets, the echo on a thread).
// Prints p50 and p99 of each (text, or one JSON object with --json). DESIGN §9
// weighs a one-client append against two round trips and one fdatasync.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <thread>

#include "histogram.h"

namespace {

using Clock = std::chrono::steady_clock;
using coworker::bench::Histogram;

constexpr size_t block_bytes = 4096;
constexpr off_t file_bytes = 256L << 20;  // wraps here: 64k blocks
constexpr size_t ping_bytes = 64;

struct Options {
  std::string dir = "/var/tmp";
  double seconds = 2.0;
  bool json = false;
};

[[noreturn]] void die(const char* what) {
  std::perror(what);
  std::exit(1);
}

uint64_t nanoseconds_since(Clock::time_point start) {
  return static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - start).count());
}

Clock::time_point deadline_after(double seconds) {
  return Clock::now() + std::chrono::duration_cast<Clock::duration>(
                            std::chrono::duration<double>(seconds));
}

Histogram measure_disk(const Options& options) {
  const std::string path = options.dir + "/coworker-floors." + std::to_string(::getpid());
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) die(path.c_str());
  ::unlink(path.c_str());  // gone when closed, even if we are killed
  if (::posix_fallocate(fd, 0, file_bytes) != 0) die("fallocate");
  if (::fsync(fd) != 0) die("fsync");  // the preallocation is not part of the loop
  std::array<char, block_bytes> block;
  block.fill('x');
  Histogram histogram;
  off_t offset = 0;
  const Clock::time_point deadline = deadline_after(options.seconds);
  while (Clock::now() < deadline) {
    const Clock::time_point start = Clock::now();
    if (::pwrite(fd, block.data(), block.size(), offset) != static_cast<ssize_t>(block.size())) {
      die("pwrite");
    }
    if (::fdatasync(fd) != 0) die("fdatasync");
    histogram.record(nanoseconds_since(start));
    offset = (offset + static_cast<off_t>(block_bytes)) % file_bytes;
  }
  ::close(fd);
  return histogram;
}

// Reads exactly `bytes` (a loopback stream may split a 64-byte message).
bool read_exactly(int fd, char* out, size_t bytes) {
  size_t done = 0;
  while (done < bytes) {
    const ssize_t n = ::recv(fd, out + done, bytes - done, 0);
    if (n <= 0) return false;
    done += static_cast<size_t>(n);
  }
  return true;
}

void no_delay(int fd) {
  const int one = 1;
  if (::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) != 0) die("TCP_NODELAY");
}

Histogram measure_rtt(const Options& options) {
  const int listener = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (listener < 0) die("socket");
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof address;
  if (::bind(listener, reinterpret_cast<sockaddr*>(&address), length) != 0) die("bind");
  if (::getsockname(listener, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
    die("getsockname");
  }
  if (::listen(listener, 1) != 0) die("listen");
  std::thread echo([listener] {
    const int fd = ::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) die("accept");
    no_delay(fd);
    std::array<char, ping_bytes> buffer;
    while (read_exactly(fd, buffer.data(), buffer.size())) {
      if (::send(fd, buffer.data(), buffer.size(), 0) != static_cast<ssize_t>(buffer.size())) {
        break;
      }
    }
    ::close(fd);
  });
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) die("socket");
  if (::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) die("connect");
  no_delay(fd);
  std::array<char, ping_bytes> buffer;
  buffer.fill('p');
  Histogram histogram;
  const Clock::time_point deadline = deadline_after(options.seconds);
  while (Clock::now() < deadline) {
    const Clock::time_point start = Clock::now();
    if (::send(fd, buffer.data(), buffer.size(), 0) != static_cast<ssize_t>(buffer.size())) {
      die("send");
    }
    if (!read_exactly(fd, buffer.data(), buffer.size())) die("recv");
    histogram.record(nanoseconds_since(start));
  }
  ::close(fd);  // the echo thread sees end of stream and returns
  echo.join();
  ::close(listener);
  return histogram;
}

double ms(uint64_t ns) { return static_cast<double>(ns) / 1e6; }

Options parse(int argc, char** argv) {
  Options options;
  for (int i = 1; i < argc; i++) {
    const std::string_view arg = argv[i];
    if (arg == "--json") {
      options.json = true;
    } else if (arg == "--dir" && i + 1 < argc) {
      options.dir = argv[++i];
    } else if (arg == "--seconds" && i + 1 < argc) {
      options.seconds = std::atof(argv[++i]);
    } else {
      std::fprintf(stderr, "usage: coworker-bench-floors [--dir DIR] [--seconds S] [--json]\n");
      std::exit(arg == "--help" || arg == "-h" ? 0 : 2);
    }
  }
  if (!(options.seconds > 0)) {
    std::fprintf(stderr, "coworker-bench-floors: --seconds must be above 0\n");
    std::exit(2);
  }
  return options;
}

}  // namespace

int main(int argc, char** argv) {
  const Options options = parse(argc, argv);
  const Histogram disk = measure_disk(options);
  const Histogram rtt = measure_rtt(options);
  if (options.json) {
    std::printf(
        "{\"dir\": \"%s\", \"seconds\": %g, \"fdatasync_4k_count\": %llu, "
        "\"fdatasync_4k_p50_ms\": %.4f, \"fdatasync_4k_p99_ms\": %.4f, "
        "\"rtt_64b_count\": %llu, \"rtt_64b_p50_ms\": %.4f, \"rtt_64b_p99_ms\": %.4f}\n",
        options.dir.c_str(), options.seconds, static_cast<unsigned long long>(disk.count()),
        ms(disk.quantile(0.5)), ms(disk.quantile(0.99)),
        static_cast<unsigned long long>(rtt.count()), ms(rtt.quantile(0.5)),
        ms(rtt.quantile(0.99)));
    return 0;
  }
  std::printf("disk: 4 KiB pwrite + fdatasync in %s, %g s: %llu, p50 %.4f ms, p99 %.4f ms\n",
              options.dir.c_str(), options.seconds,
              static_cast<unsigned long long>(disk.count()), ms(disk.quantile(0.5)),
              ms(disk.quantile(0.99)));
  std::printf("rtt: 64-byte loopback TCP round trip, %g s: %llu, p50 %.4f ms, p99 %.4f ms\n",
              options.seconds, static_cast<unsigned long long>(rtt.count()),
              ms(rtt.quantile(0.5)), ms(rtt.quantile(0.99)));
  return 0;
}
