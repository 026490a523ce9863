// The server's log line (tools/coworker/log.h): time, level, core and id on
// every line, the level threshold, one line per event, and whole lines when
// several cores log at once.
#include <doctest/doctest.h>

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "tools/coworker/log.h"

using namespace coworker::server;

namespace {

// Points the log at a pipe for one test and gives back what it wrote. The
// pipe holds 64 KiB, more than any test here writes.
class Capture {
 public:
  Capture() {
    REQUIRE(pipe2(_fds, O_NONBLOCK | O_CLOEXEC) == 0);
    set_log_fd(_fds[1]);
  }
  ~Capture() {
    set_log_fd(STDERR_FILENO);
    set_log_level(LogLevel::info);
    set_log_participant(coworker::consensus::no_participant);
    close(_fds[0]);
    close(_fds[1]);
  }
  std::string take() {
    std::string out;
    char buffer[4096];
    ssize_t n;
    while ((n = read(_fds[0], buffer, sizeof buffer)) > 0) out.append(buffer, size_t(n));
    return out;
  }

 private:
  int _fds[2] = {-1, -1};
};

const std::string time_pattern = R"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z)";

}  // namespace

TEST_CASE("log: a line has the time, level, core and participant id") {
  Capture capture;
  set_log_participant(3);
  log_info(0, "arrived as {} (cluster {})", 3, "c7f3a1");
  const std::string line = capture.take();
  INFO(line);
  const std::regex expected(time_pattern +
                            R"( info core=0 id=3 arrived as 3 \(cluster c7f3a1\)\n)");
  CHECK(std::regex_match(line, expected));
}

TEST_CASE("log: before arrival and outside the cores, id and core show as '-'") {
  Capture capture;
  log_warn(log_no_core, "data dir {} is empty", "/d");
  log_error(7, "disk full");
  const std::string lines = capture.take();
  INFO(lines);
  const std::regex expected(time_pattern + R"( warn core=- id=- data dir /d is empty\n)" +
                            time_pattern + R"( error core=7 id=- disk full\n)");
  CHECK(std::regex_match(lines, expected));
}

TEST_CASE("log: a level below the threshold prints nothing") {
  Capture capture;
  log_debug(0, "hidden at the default level");
  CHECK(capture.take().empty());
  CHECK(log_enabled(LogLevel::info));
  CHECK(!log_enabled(LogLevel::debug));

  set_log_level(LogLevel::error);
  log_warn(0, "hidden");
  log_info(0, "hidden");
  log_error(0, "shown");
  std::string out = capture.take();
  CHECK(out.find("hidden") == std::string::npos);
  CHECK(out.find(" error core=0 id=- shown\n") != std::string::npos);

  set_log_level(LogLevel::debug);
  log_debug(1, "now shown");
  CHECK(capture.take().find(" debug core=1 id=- now shown\n") != std::string::npos);
}

TEST_CASE("log: level names round-trip through --log-level") {
  for (LogLevel level : {LogLevel::error, LogLevel::warn, LogLevel::info, LogLevel::debug}) {
    CHECK(parse_log_level(log_level_name(level)) == level);
  }
  CHECK(!parse_log_level("verbose"));
  CHECK(!parse_log_level("INFO"));
}

TEST_CASE("log: an event stays one line and a long one is cut to one pipe write") {
  Capture capture;
  log_info(0, "first\nsecond\r\nthird");
  std::string line = capture.take();
  CHECK(line.find(" first second  third\n") != std::string::npos);
  CHECK(std::count(line.begin(), line.end(), '\n') == 1);

  log_info(0, "{}", std::string(10000, 'x'));
  line = capture.take();
  CHECK(line.size() == log_line_bytes_max);
  CHECK(line.substr(line.size() - 4) == "...\n");
  CHECK(std::count(line.begin(), line.end(), '\n') == 1);
}

TEST_CASE("log: lines from several cores never interleave") {
  // A file opened O_APPEND, like a harness's log file; each write(2) lands whole.
  char path[] = "/tmp/coworker_log_test_XXXXXX";
  const int fd = mkstemp(path);
  REQUIRE(fd >= 0);
  unlink(path);
  REQUIRE(fcntl(fd, F_SETFL, O_APPEND) == 0);
  set_log_fd(fd);
  constexpr unsigned cores = 4;
  constexpr int lines_per_core = 2000;
  const std::string payload(300, 'p');
  std::vector<std::thread> threads;
  for (unsigned core = 0; core < cores; core++) {
    threads.emplace_back([core, &payload] {
      for (int i = 0; i < lines_per_core; i++) log_info(core, "line {} {}", i, payload);
    });
  }
  for (std::thread& thread : threads) thread.join();
  set_log_fd(STDERR_FILENO);

  std::string all;
  char buffer[65536];
  ssize_t n;
  REQUIRE(lseek(fd, 0, SEEK_SET) == 0);
  while ((n = read(fd, buffer, sizeof buffer)) > 0) all.append(buffer, size_t(n));
  close(fd);
  const std::regex whole(time_pattern + R"( info core=\d id=- line \d+ p{300})");
  size_t lines = 0;
  size_t start = 0;
  while (start < all.size()) {
    const size_t end = all.find('\n', start);
    REQUIRE(end != std::string::npos);
    const std::string line = all.substr(start, end - start);
    if (!std::regex_match(line, whole)) FAIL("torn line: " << line);
    lines++;
    start = end + 1;
  }
  CHECK(lines == cores * lines_per_core);
}
