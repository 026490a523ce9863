// The server's log lines (see log.h).
#include "tools/coworker/log.h"

#include <limits.h>
#include <time.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cerrno>

#include "consensus/assert.h"

namespace coworker::server {
namespace {

static_assert(log_line_bytes_max <= PIPE_BUF, "a line must be one atomic pipe write");

// Set once or rarely (startup, arrival, tests), read by every core: relaxed,
// since a line printed with the previous value a moment late is harmless.
std::atomic<LogLevel> g_threshold{LogLevel::info};
std::atomic<consensus::ParticipantId> g_participant{consensus::no_participant};
std::atomic<int> g_fd{STDERR_FILENO};
static_assert(std::atomic<LogLevel>::is_always_lock_free);
static_assert(std::atomic<consensus::ParticipantId>::is_always_lock_free);

constexpr std::array<std::string_view, 4> level_names = {"error", "warn", "info", "debug"};

// On the caller's stack: a line never allocates unless its message alone
// outgrows the buffer (then it is cut below anyway).
using LineBuffer = fmt::basic_memory_buffer<char, log_line_bytes_max>;

// "2026-12-02T15:42:41.123Z info core=0 id=3 "
void append_prefix(LineBuffer& line, LogLevel level, unsigned core) {
  timespec now{};
  clock_gettime(CLOCK_REALTIME, &now);
  tm utc{};
  gmtime_r(&now.tv_sec, &utc);  // no locale, no time zone file, no lock
  fmt::format_to(fmt::appender(line), "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z {} core=",
                 utc.tm_year + 1900, utc.tm_mon + 1, utc.tm_mday, utc.tm_hour, utc.tm_min,
                 utc.tm_sec, now.tv_nsec / 1000000, log_level_name(level));
  if (core == log_no_core) {
    line.push_back('-');
  } else {
    fmt::format_to(fmt::appender(line), "{}", core);
  }
  const consensus::ParticipantId id = g_participant.load(std::memory_order_relaxed);
  if (id == consensus::no_participant) {
    line.append(std::string_view(" id=- "));
  } else {
    fmt::format_to(fmt::appender(line), " id={} ", id);
  }
}

// Keeps the event on one line (a message's own line breaks become spaces),
// cuts it to log_line_bytes_max at a UTF-8 boundary with a visible mark, and
// ends it with a newline.
void finish_line(LineBuffer& line, size_t message_start) {
  COWORKER_ASSERT(message_start <= line.size());
  for (size_t i = message_start; i < line.size(); i++) {
    if (line[i] == '\n' || line[i] == '\r') line[i] = ' ';
  }
  if (line.size() + 1 > log_line_bytes_max) {
    constexpr std::string_view cut_mark = "...";
    size_t cut = log_line_bytes_max - 1 - cut_mark.size();
    COWORKER_ASSERT(cut > message_start);
    while (cut > message_start && (static_cast<unsigned char>(line[cut]) & 0xC0) == 0x80) cut--;
    line.resize(cut);
    line.append(cut_mark);
  }
  line.push_back('\n');
  COWORKER_ASSERT(line.size() <= log_line_bytes_max);
}

void write_line(int fd, const char* data, size_t size) {
  while (size > 0) {
    const ssize_t written = ::write(fd, data, size);
    if (written < 0 && errno == EINTR) continue;
    if (written <= 0) return;  // stderr closed or non-blocking and full: drop the line
    data += written;
    size -= static_cast<size_t>(written);
  }
}

}  // namespace

std::optional<LogLevel> parse_log_level(std::string_view text) {
  for (size_t i = 0; i < level_names.size(); i++) {
    if (text == level_names[i]) return static_cast<LogLevel>(i);
  }
  return std::nullopt;
}

std::string_view log_level_name(LogLevel level) {
  const auto index = static_cast<size_t>(level);
  COWORKER_ASSERT(index < level_names.size());
  return level_names[index];
}

void set_log_level(LogLevel threshold) { g_threshold.store(threshold, std::memory_order_relaxed); }

void set_log_participant(consensus::ParticipantId id) {
  g_participant.store(id, std::memory_order_relaxed);
}

void set_log_fd(int fd) {
  COWORKER_ASSERT(fd >= 0);
  g_fd.store(fd, std::memory_order_relaxed);
}

bool log_enabled(LogLevel level) {
  return static_cast<uint8_t>(level) <=
         static_cast<uint8_t>(g_threshold.load(std::memory_order_relaxed));
}

void log_vwrite(LogLevel level, unsigned core, fmt::string_view format, fmt::format_args args) {
  LineBuffer line;
  append_prefix(line, level, core);
  const size_t message_start = line.size();
  fmt::vformat_to(fmt::appender(line), format, args);
  finish_line(line, message_start);
  write_line(g_fd.load(std::memory_order_relaxed), line.data(), line.size());
}

}  // namespace coworker::server
