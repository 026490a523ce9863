#include "bucket/segment.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <functional>
#include <memory>
#include <string_view>

#include "consensus/assert.h"
#include "consensus/crc32c.h"
#include "reactor/ops.h"

namespace coworker::bucket {

namespace {

constexpr size_t fill_chunk_bytes = 1u << 20;
constexpr size_t direct_align = 4096;

// Aligned for O_DIRECT; never written to.
const char* zeros() {
  static char* block = [] {
    void* p = nullptr;
    COWORKER_ASSERT(::posix_memalign(&p, direct_align, fill_chunk_bytes) == 0);
    std::memset(p, 0, fill_chunk_bytes);
    return static_cast<char*>(p);
  }();
  return block;
}

// The zeros of a zero_fill segment go around the page cache (O_DIRECT): they
// would only evict useful pages and cost a copy each. Falls back to the
// buffered fd where the file system refuses O_DIRECT.
int open_fill_fd(const std::string& path, int buffered_fd, uint64_t bytes) {
  if (bytes % direct_align != 0) return buffered_fd;
  const int fd = ::open(path.c_str(), O_WRONLY | O_DIRECT | O_CLOEXEC);
  return fd >= 0 ? fd : buffered_fd;
}

bool parse_hex(const std::string& s, uint64_t* out) {
  if (s.empty() || s.size() > 16) return false;
  uint64_t v = 0;
  for (char c : s) {
    int d;
    if (c >= '0' && c <= '9') d = c - '0';
    else if (c >= 'a' && c <= 'f') d = c - 'a' + 10;
    else return false;
    v = v * 16 + static_cast<uint64_t>(d);
  }
  *out = v;
  return true;
}

Result<int> create_prep(const std::string& path, uint64_t bytes, Prepare prepare) {
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return Errno{errno};
  // Recycling with no retired segment free prepares like fallocate.
  const bool allocate = prepare == Prepare::fallocate || prepare == Prepare::recycle;
  if (allocate && ::fallocate(fd, 0, 0, static_cast<off_t>(bytes)) != 0) {
    const int e = errno;
    ::close(fd);
    return Errno{e};
  }
  return fd;
}

Status publish(const std::string& log_dir, unsigned core, uint64_t index) {
  if (::rename(prep_path(log_dir, core, index).c_str(),
               segment_path(log_dir, core, index).c_str()) != 0) {
    return Errno{errno};
  }
  return {};
}

}  // namespace

const char* prepare_name(Prepare prepare) {
  switch (prepare) {
    case Prepare::zero_fill: return "zero_fill";
    case Prepare::fallocate: return "fallocate";
    case Prepare::none: return "none";
    case Prepare::recycle: return "recycle";
  }
  return "?";
}

std::string core_dir(const std::string& log_dir, unsigned core) {
  char name[32];
  std::snprintf(name, sizeof(name), "/core-%03u", core);
  return log_dir + name;
}

std::string segment_path(const std::string& log_dir, unsigned core, uint64_t index) {
  char name[40];
  std::snprintf(name, sizeof(name), "/%016" PRIx64 ".seg", index);
  return core_dir(log_dir, core) + name;
}

std::string prep_path(const std::string& log_dir, unsigned core, uint64_t index) {
  char name[40];
  std::snprintf(name, sizeof(name), "/%016" PRIx64 ".prep", index);
  return core_dir(log_dir, core) + name;
}

std::string free_path(const std::string& log_dir, unsigned core, uint64_t index) {
  char name[32];
  std::snprintf(name, sizeof(name), "/%016" PRIx64 ".free", index);
  return core_dir(log_dir, core) + name;
}

Status make_dirs(const std::string& path) {
  for (size_t at = 1; at <= path.size(); at++) {
    if (at != path.size() && path[at] != '/') continue;
    const std::string prefix = path.substr(0, at);
    if (::mkdir(prefix.c_str(), 0755) != 0 && errno != EEXIST) return Errno{errno};
  }
  return {};
}

Result<std::vector<unsigned>> list_cores(const std::string& log_dir) {
  std::vector<unsigned> cores;
  DIR* dir = ::opendir(log_dir.c_str());
  if (dir == nullptr) {
    if (errno == ENOENT) return cores;
    return Errno{errno};
  }
  while (dirent* e = ::readdir(dir)) {
    unsigned core;
    char tail;
    if (std::sscanf(e->d_name, "core-%u%c", &core, &tail) == 1) cores.push_back(core);
  }
  ::closedir(dir);
  std::sort(cores.begin(), cores.end());
  return cores;
}

namespace {

// The indexes of a core directory's `<16 hex digits><suffix>` files, sorted;
// `other` is shown every other name.
Result<std::vector<uint64_t>> list_indexed(const std::string& path, std::string_view suffix,
                                           const std::function<void(const std::string&)>& other) {
  std::vector<uint64_t> indexes;
  DIR* dir = ::opendir(path.c_str());
  if (dir == nullptr) {
    if (errno == ENOENT) return indexes;
    return Errno{errno};
  }
  while (dirent* e = ::readdir(dir)) {
    const std::string name = e->d_name;
    uint64_t index;
    if (name.size() == 16 + suffix.size() && name.ends_with(suffix) &&
        parse_hex(name.substr(0, 16), &index)) {
      indexes.push_back(index);
    } else {
      other(name);
    }
  }
  ::closedir(dir);
  std::sort(indexes.begin(), indexes.end());
  return indexes;
}

}  // namespace

Result<std::vector<uint64_t>> list_segments(const std::string& log_dir, unsigned core) {
  const std::string path = core_dir(log_dir, core);
  return list_indexed(path, ".seg", [&](const std::string& name) {
    if ((name.size() == 21 && name.ends_with(".prep")) || name == "retained.tmp" ||
        name == "round.tmp") {
      ::unlink((path + "/" + name).c_str());  // a crash while preparing: never published
    }
  });
}

Result<std::vector<uint64_t>> list_free(const std::string& log_dir, unsigned core) {
  return list_indexed(core_dir(log_dir, core), ".free", [](const std::string&) {});
}

std::string retained_path(const std::string& log_dir, unsigned core) {
  return core_dir(log_dir, core) + "/retained";
}

namespace {
// The marker's checksum: CRC32C of the index's 8 little-endian bytes.
uint32_t retained_crc(uint64_t first_kept) {
  char bytes[8];
  std::memcpy(bytes, &first_kept, sizeof(bytes));
  return consensus::crc32c(0, bytes, sizeof(bytes));
}
}  // namespace

std::string retained_text(uint64_t first_kept) {
  COWORKER_ASSERT(first_kept >= 1);
  char text[40];
  std::snprintf(text, sizeof(text), "%016" PRIx64 " %08" PRIx32 "\n", first_kept,
                retained_crc(first_kept));
  return text;
}

Result<std::optional<uint64_t>> read_retained(const std::string& log_dir, unsigned core) {
  const int fd = ::open(retained_path(log_dir, core).c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return std::optional<uint64_t>(1);
    return Errno{errno};
  }
  char text[64];
  const ssize_t n = ::pread(fd, text, sizeof(text), 0);
  const int e = errno;
  ::close(fd);
  if (n < 0) return Errno{e};
  uint64_t first = 0;
  uint64_t crc = 0;
  const bool ok = n == 26 && text[16] == ' ' && text[25] == '\n' &&
                  parse_hex(std::string(text, 16), &first) &&
                  parse_hex(std::string(text + 17, 8), &crc) && first >= 1 &&
                  crc == retained_crc(first);
  if (!ok) return std::optional<uint64_t>();
  return std::optional<uint64_t>(first);
}

Status fsync_dir(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return Errno{errno};
  const int rc = ::fsync(fd);
  const int e = errno;
  ::close(fd);
  if (rc != 0) return Errno{e};
  return {};
}

Result<int> prepare_segment_sync(const std::string& log_dir, unsigned core, uint64_t index,
                                 uint64_t bytes, Prepare prepare) {
  Result<int> fd = create_prep(prep_path(log_dir, core, index), bytes, prepare);
  if (!fd) return fd;
  auto fail = [&](int e) -> Result<int> {
    ::close(*fd);
    return Errno{e};
  };
  if (prepare == Prepare::zero_fill) {
    const int fill = open_fill_fd(prep_path(log_dir, core, index), *fd, bytes);
    for (uint64_t at = 0; at < bytes;) {
      const size_t n = static_cast<size_t>(std::min<uint64_t>(fill_chunk_bytes, bytes - at));
      const ssize_t w = ::pwrite(fill, zeros(), n, static_cast<off_t>(at));
      if (w <= 0) {
        if (fill != *fd) ::close(fill);
        return fail(w < 0 ? errno : ENOSPC);
      }
      at += static_cast<uint64_t>(w);
    }
    if (fill != *fd) ::close(fill);
  }
  if (::fdatasync(*fd) != 0) return fail(errno);
  Status published = publish(log_dir, core, index);
  if (!published) return fail(published.error().code);
  Status synced = fsync_dir(core_dir(log_dir, core));
  if (!synced) return fail(synced.error().code);
  return fd;
}

reactor::Task<Result<int>> prepare_segment(std::string log_dir, unsigned core, uint64_t index,
                                           uint64_t bytes, Prepare prepare, int dir_fd) {
  Result<int> fd = create_prep(prep_path(log_dir, core, index), bytes, prepare);
  if (!fd) co_return fd;
  int error = 0;
  if (prepare == Prepare::zero_fill) {
    const int fill = open_fill_fd(prep_path(log_dir, core, index), *fd, bytes);
    for (uint64_t at = 0; at < bytes && error == 0;) {
      const size_t n = static_cast<size_t>(std::min<uint64_t>(fill_chunk_bytes, bytes - at));
      Result<size_t> w = co_await reactor::Write{fill, std::span<const char>(zeros(), n), at};
      if (!w) error = w.error().code;
      at += n;
    }
    if (fill != *fd) ::close(fill);
  }
  if (error == 0) {
    Status synced = co_await reactor::Fsync{*fd};
    if (!synced) error = synced.error().code;
  }
  if (error == 0) {
    Status published = publish(log_dir, core, index);
    if (!published) error = published.error().code;
  }
  if (error == 0) {
    Status synced = co_await reactor::Fsync{dir_fd, reactor::SyncData::all};
    if (!synced) error = synced.error().code;
  }
  if (error != 0) {
    ::close(*fd);
    co_return Errno{error};
  }
  co_return fd;
}

reactor::Task<Result<int>> recycle_segment(std::string log_dir, unsigned core,
                                           uint64_t free_index, uint64_t index, int dir_fd) {
  const std::string path = segment_path(log_dir, core, index);
  if (::rename(free_path(log_dir, core, free_index).c_str(), path.c_str()) != 0) {
    co_return Errno{errno};
  }
  Status synced = co_await reactor::Fsync{dir_fd, reactor::SyncData::all};
  if (!synced) co_return synced.error();
  const int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0) co_return Errno{errno};
  co_return fd;
}

}  // namespace coworker::bucket
