#include "tools/coworker/data_dir.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include <fmt/format.h>

#include "consensus/assert.h"

namespace coworker::server {

namespace {

std::string why(const std::string& what) { return what + ": " + std::strerror(errno); }

bool make_dir(const std::string& path) { return ::mkdir(path.c_str(), 0755) == 0 || errno == EEXIST; }

bool fsync_path(const std::string& path, int flags) {
  const int fd = ::open(path.c_str(), flags | O_CLOEXEC);
  if (fd < 0) return false;
  const bool ok = ::fsync(fd) == 0;
  ::close(fd);
  return ok;
}

constexpr const char* identity_prefix = "coworker-data-dir 1 ";

Result<uint64_t, std::string> read_identity(const std::string& file) {
  FILE* f = std::fopen(file.c_str(), "re");
  if (f == nullptr) return why("cannot read " + file);
  char line[128] = {};
  const bool got = std::fgets(line, sizeof line, f) != nullptr;
  std::fclose(f);
  unsigned long long id = 0;
  char tail = 0;
  const std::string prefix = identity_prefix;
  if (!got || std::strncmp(line, prefix.c_str(), prefix.size()) != 0 ||
      std::sscanf(line + prefix.size(), "%16llx%c", &id, &tail) != 2 || tail != '\n' || id == 0) {
    return std::string(file + " is not a coworker identity file");
  }
  return static_cast<uint64_t>(id);
}

Result<uint64_t, std::string> create_identity(const std::string& dir, const std::string& file) {
  uint64_t id = 0;
  while (id == 0) {
    if (::getrandom(&id, sizeof id, 0) != sizeof id) return why("getrandom");
  }
  const std::string temp = file + ".tmp";
  const int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return why("cannot create " + temp);
  const std::string line = fmt::format("{}{:016x}\n", identity_prefix, id);
  const bool written = ::write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size());
  const bool synced = written && ::fsync(fd) == 0;
  ::close(fd);
  if (!synced) return why("cannot write " + temp);
  if (::rename(temp.c_str(), file.c_str()) != 0) return why("cannot rename " + temp);
  if (!fsync_path(dir, O_RDONLY | O_DIRECTORY)) return why("cannot fsync " + dir);
  return id;
}

}  // namespace

Result<DataDir, std::string> open_data_dir(const std::string& path) {
  COWORKER_ASSERT(!path.empty());
  DataDir dir;
  dir.path = path;
  dir.log_dir = path + "/log";
  if (!make_dir(path)) return why("cannot create data dir " + path);
  dir.lock_fd = ::open((path + "/LOCK").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (dir.lock_fd < 0) return why("cannot open " + path + "/LOCK");
  if (::flock(dir.lock_fd, LOCK_EX | LOCK_NB) != 0) {
    ::close(dir.lock_fd);
    return std::string("data dir " + path + " is in use by another process");
  }
  const std::string file = path + "/IDENTITY";
  struct stat st{};
  const bool exists = ::stat(file.c_str(), &st) == 0;
  Result<uint64_t, std::string> id = exists ? read_identity(file) : create_identity(path, file);
  if (!id) {
    ::close(dir.lock_fd);
    return id.error();
  }
  dir.fresh = !exists;
  dir.id = *id;
  if (!make_dir(dir.log_dir)) return why("cannot create " + dir.log_dir);
  return dir;
}

}  // namespace coworker::server
