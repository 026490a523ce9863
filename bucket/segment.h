// Segment files: where a core's write-ahead log lives on disk, and how a
// segment is prepared before the log needs it.
//
//   <log dir>/core-<C>/<index, 16 hex digits>.seg     segments, index 1, 2, ...
//   <log dir>/core-<C>/<index>.prep                    a segment being prepared
//   <log dir>/core-<C>/retained                        the first segment kept
//   <log dir>/core-<C>/<index>.free                    a retired segment kept for reuse
//
// Retention (DESIGN §6) deletes whole segments from the front of a core's
// log. It first replaces `retained` (the first segment kept, 16 hex digits,
// a space, the CRC32C of its 8 little-endian bytes in 8 hex digits, a
// newline; written as retained.tmp, fdatasync'ed, renamed, directory
// fsync'ed), then unlinks the segments below it, so a crash between the
// two leaves files recovery knows to delete, and a segment missing at or
// above the marker is still corruption. No marker: the log starts at 1. A
// marker that fails its checksum, or names a segment above every one on
// disk, deletes nothing: recovery reports the front as damaged.
//
// A segment gets its final name only once it is fully prepared and durable
// (created, filled or allocated, fdatasync'ed, renamed, directory fsync'ed),
// so a `.seg` file is always whole; a stray `.prep` (a crash while preparing)
// is deleted at open. Preparation methods (measured in bench/, see
// docs/ARCHITECTURE.md "Log store"):
//   zero_fill  write zeros over the whole segment: later appends overwrite
//              written extents, so an fdatasync flushes data only, but every
//              byte of the log is written twice;
//   fallocate  unwritten extents: every fdatasync also commits the journal to
//              convert the extents it wrote (measured cheaper than zero_fill);
//   none       an empty file that each write extends (allocation in fdatasync);
//   recycle    (default) a segment retention retired (`<old index>.free`) renamed into
//              place: its extents are written, so appends overwrite them
//              and an fdatasync flushes data only, with no byte written
//              twice; fallocate while no retired segment is free. Its old
//              records stay behind the new ones, and can never pass for
//              records of the new index: a header's checksum is seeded with
//              its segment's index and holds its own offset (record.h), so
//              recovery reads them as the end of the log, never as damage.
//
// The synchronous functions are for startup and tools; LogStore prepares the
// next segment on its core with the reactor's ops (prepare_segment).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "reactor/result.h"
#include "reactor/task.h"

namespace coworker::bucket {

enum class Prepare : uint8_t { zero_fill, fallocate, none, recycle };
const char* prepare_name(Prepare prepare);

std::string core_dir(const std::string& log_dir, unsigned core);
std::string segment_path(const std::string& log_dir, unsigned core, uint64_t index);
std::string prep_path(const std::string& log_dir, unsigned core, uint64_t index);
std::string free_path(const std::string& log_dir, unsigned core, uint64_t index);

// Creates the directory (and its parents) when missing.
Status make_dirs(const std::string& path);
// The cores that have a log directory, sorted (any count: a restart with
// other `--cores` reads them all).
Result<std::vector<unsigned>> list_cores(const std::string& log_dir);
// The segment indexes of one core, sorted; stray `.prep` files are removed.
Result<std::vector<uint64_t>> list_segments(const std::string& log_dir, unsigned core);
Status fsync_dir(const std::string& path);

std::string retained_path(const std::string& log_dir, unsigned core);
// The first segment kept (1 without a marker); nullopt: the marker is
// unreadable (damaged) — recovery then reports the front as missing.
Result<std::optional<uint64_t>> read_retained(const std::string& log_dir, unsigned core);
// The marker's bytes for `first_kept`.
std::string retained_text(uint64_t first_kept);

// The retired segments kept for reuse (`<index>.free`), sorted.
Result<std::vector<uint64_t>> list_free(const std::string& log_dir, unsigned core);

// Prepares segment `index` synchronously and returns its fd (read-write),
// atomically replacing any file of that name.
Result<int> prepare_segment_sync(const std::string& log_dir, unsigned core, uint64_t index,
                                 uint64_t bytes, Prepare prepare);

// The same on the calling core's loop: the filling and the fdatasyncs go
// through the reactor; open, fallocate and rename are short system calls.
// `dir_fd` is the core directory, kept open by the caller.
reactor::Task<Result<int>> prepare_segment(std::string log_dir, unsigned core, uint64_t index,
                                           uint64_t bytes, Prepare prepare, int dir_fd);

// Prepare::recycle with a free segment: `<free_index>.free` becomes segment
// `index` (renamed, the directory fsync'ed; its bytes were durable when it
// was sealed) and is opened read-write.
reactor::Task<Result<int>> recycle_segment(std::string log_dir, unsigned core,
                                           uint64_t free_index, uint64_t index, int dir_fd);

}  // namespace coworker::bucket
