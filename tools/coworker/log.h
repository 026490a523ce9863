// The server's log: one line per event, on stderr, with the time (UTC, ms),
// the level, the core and the participant id, then the message:
//
//   2026-12-02T15:42:41.123Z info core=0 id=3 arrived as 3 (cluster c7f3a1)
//
// `core=-` marks a line from outside the cores (startup, shutdown), `id=-` a
// participant whose arrival is not decided yet.
//
// Any core may log at any time, without locks: the level, the participant id
// and the output fd are relaxed atomics, the line is formatted into a buffer
// on the caller's stack, and written with ONE write(2). Lines are at most
// PIPE_BUF bytes (longer messages are cut), so lines from several cores never
// interleave, whether stderr is a pipe, a terminal or a file opened O_APPEND.
// A write blocks its core while stderr is full, like any stderr; a failed
// write drops the line (logging never stops a core).
//
//   log_info(core, "arrived as {} (cluster {})", id, cluster);
//   if (log_enabled(LogLevel::debug)) log_debug(core, "{}", expensive());
#pragma once

#include <fmt/format.h>

#include <climits>
#include <cstdint>
#include <optional>
#include <string_view>
#include <utility>

#include "consensus/ids.h"

namespace coworker::server {

// Ordered by verbosity: a line prints when its level <= the threshold.
enum class LogLevel : uint8_t { error, warn, info, debug };

std::optional<LogLevel> parse_log_level(std::string_view text);  // "error".."debug"
std::string_view log_level_name(LogLevel level);

// The `core` of a line logged outside the cores.
inline constexpr unsigned log_no_core = UINT_MAX;
// The longest line written, newline included: one write(2) of at most
// PIPE_BUF bytes is atomic on a pipe.
inline constexpr size_t log_line_bytes_max = 4096;

void set_log_level(LogLevel threshold);  // --log-level; info until set
void set_log_participant(consensus::ParticipantId id);  // once arrived
void set_log_fd(int fd);  // where lines go: stderr (2) unless a test says otherwise

bool log_enabled(LogLevel level);

// Formats and writes one line. Prefer the log_* helpers below.
void log_vwrite(LogLevel level, unsigned core, fmt::string_view format, fmt::format_args args);

template <typename... Args>
void log_at(LogLevel level, unsigned core, fmt::format_string<Args...> format, Args&&... args) {
  if (!log_enabled(level)) return;
  log_vwrite(level, core, static_cast<fmt::string_view>(format), fmt::make_format_args(args...));
}

template <typename... Args>
void log_error(unsigned core, fmt::format_string<Args...> format, Args&&... args) {
  log_at(LogLevel::error, core, format, std::forward<Args>(args)...);
}
template <typename... Args>
void log_warn(unsigned core, fmt::format_string<Args...> format, Args&&... args) {
  log_at(LogLevel::warn, core, format, std::forward<Args>(args)...);
}
template <typename... Args>
void log_info(unsigned core, fmt::format_string<Args...> format, Args&&... args) {
  log_at(LogLevel::info, core, format, std::forward<Args>(args)...);
}
template <typename... Args>
void log_debug(unsigned core, fmt::format_string<Args...> format, Args&&... args) {
  log_at(LogLevel::debug, core, format, std::forward<Args>(args)...);
}

}  // namespace coworker::server
