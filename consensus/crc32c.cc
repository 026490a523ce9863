#include "consensus/crc32c.h"

#include <cstring>

#if defined(__x86_64__)
#include <immintrin.h>
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
  if (crc32c_wide_available()) return &crc32c_wide;
  return crc32c_hardware_available() ? &crc32c_hardware : &crc32c_portable;
}
const Crc32cFn chosen = pick();
#if defined(__x86_64__)
const bool has_crc32_instruction = crc32c_hardware_available();

__attribute__((target("sse4.2"))) uint32_t crc32c_u64_hardware(uint32_t crc, uint64_t value) {
  return ~static_cast<uint32_t>(_mm_crc32_u64(~crc, value));
}
#endif

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
  if (size >= 3 * short_lane) {
    // Aligned loads for the long runs; a short buffer's unaligned 8-byte
    // loads cost less than up to seven single-byte steps (a 100-byte body).
    while ((reinterpret_cast<uintptr_t>(p) & 7) != 0) {
      c = _mm_crc32_u8(static_cast<uint32_t>(c), *p++);
      size--;
    }
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

bool crc32c_wide_available() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("sse4.2") && __builtin_cpu_supports("pclmul") &&
         __builtin_cpu_supports("avx512f") &&
         __builtin_cpu_supports("vpclmulqdq");
}

namespace {

// Folding (Intel, "Fast CRC Computation for Generic Polynomials Using
// PCLMULQDQ"): a 128-bit block B, D bits before the block it is folded
// into, is replaced by lo(B) * k1 ^ hi(B) * k2 (carry-less), which the CRC
// cannot tell from B: k1 = x^(D+31) mod P and k2 = x^(D-33) mod P, both
// bit-reflected in 32 bits (derived with a bit-level model of these
// instructions, and checked against the portable CRC by the tests).
// Each pair: {k1, k2} for one distance D.
constexpr uint64_t fold_2048[2] = {0xdcb17aa4, 0xb9e02b86};  // 4 registers of 64 bytes
constexpr uint64_t fold_512[2] = {0x740eef02, 0x9e4addf8};   // one register
constexpr uint64_t fold_128[2] = {0xf20c0dfe, 0x493c7d27};   // one 16-byte lane

__attribute__((target("avx512f,vpclmulqdq"))) __m512i fold(__m512i x, __m512i k) {
  return _mm512_xor_si512(_mm512_clmulepi64_epi128(x, k, 0x00),
                          _mm512_clmulepi64_epi128(x, k, 0x11));
}

__attribute__((target("avx512f,vpclmulqdq"))) __m512i broadcast(const uint64_t (&k)[2]) {
  return _mm512_broadcast_i32x4(
      _mm_set_epi64x(static_cast<long long>(k[1]), static_cast<long long>(k[0])));
}

__attribute__((target("avx512f,vpclmulqdq"))) __m512i load512(const unsigned char* p) {
  return _mm512_loadu_si512(p);
}

}  // namespace

// 256 bytes a round in four 512-bit registers (16 lanes of 16 bytes), each
// lane folded 2048 bits forward; then the registers folded into one, its
// lanes into one, and that lane's 16 bytes through the crc32 instruction,
// which reduces them to the CRC; the tail goes to crc32c_hardware.
__attribute__((target("sse4.2,pclmul,avx512f,vpclmulqdq"))) uint32_t crc32c_wide(uint32_t crc,
                                                                          const void* data,
                                                                          size_t size) {
  if (size < wide_bytes_min) return crc32c_hardware(crc, data, size);
  const auto* p = static_cast<const unsigned char*>(data);
  __m512i x0 = load512(p);
  __m512i x1 = load512(p + 64);
  __m512i x2 = load512(p + 128);
  __m512i x3 = load512(p + 192);
  // The running CRC enters as the first 4 bytes' xor (the CRC is linear).
  x0 = _mm512_xor_si512(x0, _mm512_castsi128_si512(_mm_cvtsi32_si128(static_cast<int>(~crc))));
  p += 256;
  size -= 256;
  const __m512i k2048 = broadcast(fold_2048);
  while (size >= 256) {
    x0 = _mm512_xor_si512(fold(x0, k2048), load512(p));
    x1 = _mm512_xor_si512(fold(x1, k2048), load512(p + 64));
    x2 = _mm512_xor_si512(fold(x2, k2048), load512(p + 128));
    x3 = _mm512_xor_si512(fold(x3, k2048), load512(p + 192));
    p += 256;
    size -= 256;
  }
  const __m512i k512 = broadcast(fold_512);
  x1 = _mm512_xor_si512(fold(x0, k512), x1);
  x2 = _mm512_xor_si512(fold(x1, k512), x2);
  x3 = _mm512_xor_si512(fold(x2, k512), x3);
  const __m128i k128 = _mm_set_epi64x(static_cast<long long>(fold_128[1]),
                                      static_cast<long long>(fold_128[0]));
  __m128i lane = _mm512_extracti32x4_epi32(x3, 0);
  const __m128i lanes[3] = {_mm512_extracti32x4_epi32(x3, 1), _mm512_extracti32x4_epi32(x3, 2),
                            _mm512_extracti32x4_epi32(x3, 3)};
  for (const __m128i& next : lanes) {
    lane = _mm_xor_si128(_mm_xor_si128(_mm_clmulepi64_si128(lane, k128, 0x00),
                                       _mm_clmulepi64_si128(lane, k128, 0x11)),
                         next);
  }
  uint64_t c = _mm_crc32_u64(0, static_cast<uint64_t>(_mm_cvtsi128_si64(lane)));
  c = _mm_crc32_u64(c, static_cast<uint64_t>(_mm_extract_epi64(lane, 1)));
  return crc32c_hardware(~static_cast<uint32_t>(c), p, size);
}
#else
bool crc32c_hardware_available() { return false; }
uint32_t crc32c_hardware(uint32_t, const void*, size_t) {
  COWORKER_ASSERT(!"crc32c_hardware called without SSE4.2");
  return 0;
}
bool crc32c_wide_available() { return false; }
uint32_t crc32c_wide(uint32_t, const void*, size_t) {
  COWORKER_ASSERT(!"crc32c_wide called without AVX-512 VPCLMULQDQ");
  return 0;
}
#endif

uint32_t crc32c(uint32_t crc, const void* data, size_t size) { return chosen(crc, data, size); }

uint32_t crc32c_u64(uint32_t crc, uint64_t value) {
#if defined(__x86_64__)
  if (has_crc32_instruction) return crc32c_u64_hardware(crc, value);
#endif
  unsigned char bytes[8];
  for (int i = 0; i < 8; i++) bytes[i] = static_cast<unsigned char>(value >> (8 * i));
  return crc32c_portable(crc, bytes, sizeof(bytes));
}

}  // namespace coworker::consensus
