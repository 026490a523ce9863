#include "bucket/segment_reader.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "consensus/assert.h"

namespace coworker::bucket {

Status SegmentReader::open(const std::string& path) {
  close();
  _fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (_fd < 0) return Errno{errno};
  struct stat st {};
  if (::fstat(_fd, &st) != 0) return Errno{errno};
  _size = static_cast<uint64_t>(st.st_size);
  ::posix_fadvise(_fd, 0, 0, POSIX_FADV_SEQUENTIAL);
  _start = 0;
  _length = 0;
  _dropped = 0;
  return {};
}

void SegmentReader::close() {
  if (_fd >= 0) {
    ::posix_fadvise(_fd, 0, 0, POSIX_FADV_DONTNEED);
    ::close(_fd);
  }
  _fd = -1;
  _size = 0;
  _length = 0;
}

Result<std::span<const char>> SegmentReader::view(uint64_t offset, size_t length) {
  COWORKER_ASSERT(_fd >= 0);
  if (offset > _size || length > _size - offset) return std::span<const char>{};
  if (offset >= _start && offset + length <= _start + _length) {
    return std::span<const char>(_buffer.get() + (offset - _start), length);
  }
  const size_t want = static_cast<size_t>(
      std::min<uint64_t>(std::max(length, chunk_bytes), _size - offset));
  if (want > _capacity) {
    _buffer.reset(new char[want]);
    _capacity = want;
  }
  size_t done = 0;
  while (done < want) {
    const ssize_t n = ::pread(_fd, _buffer.get() + done, want - done,
                              static_cast<off_t>(offset + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      return Errno{errno};
    }
    if (n == 0) break;  // the file shrank under us
    done += static_cast<size_t>(n);
  }
  _start = offset;
  _length = done;
  if (done < length) return std::span<const char>{};
  // What lies well behind us will not be read again.
  if (offset > _dropped + chunk_bytes) {
    ::posix_fadvise(_fd, static_cast<off_t>(_dropped), static_cast<off_t>(offset - _dropped),
                    POSIX_FADV_DONTNEED);
    _dropped = offset;
  }
  return std::span<const char>(_buffer.get(), length);
}

}  // namespace coworker::bucket
