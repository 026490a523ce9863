// CRC32C (Castagnoli), the checksum of phaser writes and of log records.
//
// Hardware-accelerated with SSE4.2 where the CPU has it, a table otherwise;
// both give the same value (pinned by test vectors).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace coworker::consensus {

// Extends `crc` (0 to start) over `data`.
uint32_t crc32c(uint32_t crc, const void* data, size_t size);

inline uint32_t crc32c(uint32_t crc, std::string_view bytes) {
  return crc32c(crc, bytes.data(), bytes.size());
}

// Extends `crc` over the little-endian bytes of an integer.
inline uint32_t crc32c_u64(uint32_t crc, uint64_t value) {
  unsigned char bytes[8];
  for (int i = 0; i < 8; i++) bytes[i] = static_cast<unsigned char>(value >> (8 * i));
  return crc32c(crc, bytes, sizeof(bytes));
}

}  // namespace coworker::consensus
