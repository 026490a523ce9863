// CRC32C (Castagnoli, reflected polynomial 0x82F63B78): the checksum of every
// log-store record (bucket/record.h) and of every phaser write.
//
// Three implementations behind one function, chosen once at start by what
// the CPU has: AVX-512 folding (crc32c_wide), the SSE4.2 `crc32`
// instruction, and a portable slicing-by-8 table fallback. All are pinned
// by the RFC 3720 vectors and checked against the table
// (tests/consensus/crc32c_test.cc).
// Pure functions: any thread, any core.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

namespace coworker::consensus {

// Extends `crc` (0 to start) over `data`. Chaining is allowed:
// crc32c(crc32c(0, a), b) == crc32c(0, a ++ b).
uint32_t crc32c(uint32_t crc, const void* data, size_t size);
inline uint32_t crc32c(uint32_t crc, std::span<const char> data) {
  return crc32c(crc, data.data(), data.size());
}
// Extends `crc` over the 8 little-endian bytes of an integer: one `crc32`
// instruction where the CPU has it (checksum_of calls it seven times per
// message; through crc32c() on a stack buffer it was a fifth of the
// engine's instructions per message, bench/engine.cc).
uint32_t crc32c_u64(uint32_t crc, uint64_t value);

// The two implementations, exposed so that tests check both against the
// vectors whatever the CPU picks.
uint32_t crc32c_portable(uint32_t crc, const void* data, size_t size);
uint32_t crc32c_hardware(uint32_t crc, const void* data, size_t size);
bool crc32c_hardware_available();
// The third, on CPUs with AVX-512 and VPCLMULQDQ: buffers of at least
// wide_bytes_min folded 256 bytes a round by carry-less multiplication
// (about 4.6x the crc32 instruction's rate on 17 KiB buffers; every read
// of the log verifies its payloads, issue 12 point 7a); shorter ones, and
// the tail, by crc32c_hardware.
constexpr size_t wide_bytes_min = 1024;
uint32_t crc32c_wide(uint32_t crc, const void* data, size_t size);
bool crc32c_wide_available();

}  // namespace coworker::consensus
