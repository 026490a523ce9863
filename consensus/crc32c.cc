#include "consensus/crc32c.h"

#include <cstring>

#if defined(__x86_64__)
#include <nmmintrin.h>
#endif

#include "consensus/assert.h"

namespace coworker::consensus {

namespace {

constexpr uint32_t polynomial = 0x82F63B78u;  // reflected Castagnoli

// table[k][b]: the CRC of byte b followed by k zero bytes (slicing-by-8).
struct Tables {
  uint32_t t[8][256];
  constexpr Tables() : t() {
    for (uint32_t b = 0; b < 256; b++) {
      uint32_t crc = b;
      for (int i = 0; i < 8; i++) crc = (crc >> 1) ^ (polynomial & (0u - (crc & 1u)));
      t[0][b] = crc;
    }
    for (uint32_t b = 0; b < 256; b++) {
      for (int k = 1; k < 8; k++) t[k][b] = (t[k - 1][b] >> 8) ^ t[0][t[k - 1][b] & 0xFF];
    }
  }
};
constexpr Tables tables{};

uint64_t load64(const unsigned char* p) {
  uint64_t v;
  std::memcpy(&v, p, sizeof(v));
  return v;  // little-endian host (x86-64, aarch64): asserted in record.h
}

using Crc32cFn = uint32_t (*)(uint32_t, const void*, size_t);

Crc32cFn pick() {
  return crc32c_hardware_available() ? &crc32c_hardware : &crc32c_portable;
}
const Crc32cFn chosen = pick();

}  // namespace

uint32_t crc32c_portable(uint32_t crc, const void* data, size_t size) {
  const auto* p = static_cast<const unsigned char*>(data);
  const auto& t = tables.t;
  crc = ~crc;
  while (size >= 8) {
    const uint64_t v = load64(p) ^ crc;
    crc = t[7][v & 0xFF] ^ t[6][(v >> 8) & 0xFF] ^ t[5][(v >> 16) & 0xFF] ^
          t[4][(v >> 24) & 0xFF] ^ t[3][(v >> 32) & 0xFF] ^ t[2][(v >> 40) & 0xFF] ^
          t[1][(v >> 48) & 0xFF] ^ t[0][v >> 56];
    p += 8;
    size -= 8;
  }
  while (size-- > 0) crc = (crc >> 8) ^ t[0][(crc ^ *p++) & 0xFF];
  return ~crc;
}

#if defined(__x86_64__)
bool crc32c_hardware_available() {
  __builtin_cpu_init();  // may run from a static initializer, before libgcc's own
  return __builtin_cpu_supports("sse4.2");
}

namespace {

// Three independent crc32 chains hide the instruction's 3-cycle latency
// (Mark Adler's crc32c.c): lanes of `long_lane` bytes, then `short_lane`,
// combined by shifting a CRC over a lane of zeros with precomputed tables.
constexpr size_t long_lane = 8192;
constexpr size_t short_lane = 256;

uint32_t gf2_times(const uint32_t* matrix, uint32_t vector) {
  uint32_t sum = 0;
  for (; vector != 0; vector >>= 1, matrix++) {
    if (vector & 1) sum ^= *matrix;
  }
  return sum;
}

void gf2_square(uint32_t* square, const uint32_t* matrix) {
  for (int n = 0; n < 32; n++) square[n] = gf2_times(matrix, matrix[n]);
}

// The operator that appends `bytes` zero bytes (a power of two) to a CRC.
struct ShiftTable {
  uint32_t t[4][256];
  explicit ShiftTable(size_t bytes) {
    uint32_t even[32], odd[32];
    odd[0] = polynomial;  // one zero bit
    for (int n = 1; n < 32; n++) odd[n] = 1u << (n - 1);
    gf2_square(even, odd);  // two zero bits
    gf2_square(odd, even);  // four
    for (;;) {
      gf2_square(even, odd);  // 8, 32, ... bits
      bytes >>= 1;
      if (bytes == 0) break;
      gf2_square(odd, even);
      bytes >>= 1;
      if (bytes == 0) {
        std::memcpy(even, odd, sizeof(even));
        break;
      }
    }
    for (uint32_t n = 0; n < 256; n++) {
      for (int k = 0; k < 4; k++) t[k][n] = gf2_times(even, n << (8 * k));
    }
  }
  uint32_t shift(uint32_t crc) const {
    return t[0][crc & 0xFF] ^ t[1][(crc >> 8) & 0xFF] ^ t[2][(crc >> 16) & 0xFF] ^
           t[3][crc >> 24];
  }
};

// Function-local, so that a CRC computed from another static initializer
// still finds them built.
const ShiftTable& long_shift() {
  static const ShiftTable table(long_lane);
  return table;
}
const ShiftTable& short_shift() {
  static const ShiftTable table(short_lane);
  return table;
}

__attribute__((target("sse4.2"))) uint64_t crc32c_lanes(uint64_t crc, const unsigned char*& p,
                                                        size_t& size, size_t lane,
                                                        const ShiftTable& shift) {
  while (size >= 3 * lane) {
    uint64_t crc1 = 0, crc2 = 0;
    for (const unsigned char* end = p + lane; p < end; p += 8) {
      crc = _mm_crc32_u64(crc, load64(p));
      crc1 = _mm_crc32_u64(crc1, load64(p + lane));
      crc2 = _mm_crc32_u64(crc2, load64(p + 2 * lane));
    }
    crc = shift.shift(static_cast<uint32_t>(crc)) ^ crc1;
    crc = shift.shift(static_cast<uint32_t>(crc)) ^ crc2;
    p += 2 * lane;
    size -= 3 * lane;
  }
  return crc;
}

}  // namespace

__attribute__((target("sse4.2"))) uint32_t crc32c_hardware(uint32_t crc, const void* data,
                                                            size_t size) {
  const auto* p = static_cast<const unsigned char*>(data);
  uint64_t c = ~crc;
  while (size > 0 && (reinterpret_cast<uintptr_t>(p) & 7) != 0) {
    c = _mm_crc32_u8(static_cast<uint32_t>(c), *p++);
    size--;
  }
  if (size >= 3 * short_lane) {
    c = crc32c_lanes(c, p, size, long_lane, long_shift());
    c = crc32c_lanes(c, p, size, short_lane, short_shift());
  }
  while (size >= 8) {
    c = _mm_crc32_u64(c, load64(p));
    p += 8;
    size -= 8;
  }
  while (size-- > 0) c = _mm_crc32_u8(static_cast<uint32_t>(c), *p++);
  return ~static_cast<uint32_t>(c);
}
#else
bool crc32c_hardware_available() { return false; }
uint32_t crc32c_hardware(uint32_t, const void*, size_t) {
  COWORKER_ASSERT(!"crc32c_hardware called without SSE4.2");
  return 0;
}
#endif

uint32_t crc32c(uint32_t crc, const void* data, size_t size) { return chosen(crc, data, size); }

}  // namespace coworker::consensus
