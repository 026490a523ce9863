// SegmentReader: sequential, chunked reads of one segment file at a time,
// for recovery (recovery.h). Owned by one replay, on the thread running it.
//
// Reads go through the page cache in large chunks (posix_fadvise SEQUENTIAL)
// and are dropped from it afterwards (DONTNEED): recovery reads each byte once
// and should not evict the rest of the machine's cache.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "reactor/result.h"

namespace coworker::bucket {

class SegmentReader {
 public:
  static constexpr size_t chunk_bytes = 4u << 20;

  SegmentReader() = default;
  SegmentReader(const SegmentReader&) = delete;
  SegmentReader& operator=(const SegmentReader&) = delete;
  ~SegmentReader() { close(); }

  // Opens a segment; ENOENT when it is missing.
  Status open(const std::string& path);
  void close();
  uint64_t size() const { return _size; }

  // The bytes [offset, offset + length), or an empty span when they run past
  // the end of the file. Valid until the next call.
  Result<std::span<const char>> view(uint64_t offset, size_t length);

 private:
  int _fd = -1;
  uint64_t _size = 0;
  std::unique_ptr<char[]> _buffer;
  size_t _capacity = 0;
  uint64_t _start = 0;  // file offset of _buffer[0]
  size_t _length = 0;   // bytes held
  uint64_t _dropped = 0;  // page cache dropped below this offset
};

}  // namespace coworker::bucket
