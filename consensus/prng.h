// Prng: the only source of randomness in consensus/ and in the simulator.
//
// xoshiro256** (Blackman and Vigna), seeded through splitmix64 so that any
// 64-bit seed, including 0, gives a well-mixed state. Everything here is
// plain integer arithmetic, so one seed gives the same stream on every
// compiler, standard library and sanitizer build: the simulator's trace hash
// depends on it. The std <random> distributions are not used because their
// algorithms differ between standard libraries.
//
// A Prng is owned by whoever drives a state machine (the simulator gives each
// participant its own stream; a server would seed one per core) and is passed
// in by reference. It is not thread-safe and not cryptographic.
#pragma once

#include <cstdint>

#include "consensus/assert.h"

namespace coworker::consensus {

// splitmix64 (Steele, Lea, Flood): a bijective 64-bit mixer; also used to
// derive independent seeds (per participant, per incarnation) from one seed.
constexpr uint64_t splitmix64(uint64_t& state) {
  state += 0x9e3779b97f4a7c15ULL;
  uint64_t z = state;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

// One value from a seed and a stream number: independent substreams.
constexpr uint64_t derive_seed(uint64_t seed, uint64_t stream) {
  uint64_t state = seed ^ (stream * 0xd1b54a32d192ed03ULL);
  splitmix64(state);
  return splitmix64(state);
}

class Prng {
 public:
  explicit constexpr Prng(uint64_t seed) {
    uint64_t state = seed;
    for (uint64_t& word : _state) word = splitmix64(state);
  }

  constexpr uint64_t next() {
    const uint64_t result = rotl(_state[1] * 5, 7) * 9;
    const uint64_t t = _state[1] << 17;
    _state[2] ^= _state[0];
    _state[3] ^= _state[1];
    _state[1] ^= _state[2];
    _state[0] ^= _state[3];
    _state[2] ^= t;
    _state[3] = rotl(_state[3], 45);
    return result;
  }

  // Uniform in [0, bound), bound > 0. Lemire's multiply-shift with rejection:
  // exact (no modulo bias) and identical on every platform.
  constexpr uint64_t below(uint64_t bound) {
    COWORKER_ASSERT(bound > 0);
    unsigned __int128 product = static_cast<unsigned __int128>(next()) * bound;
    uint64_t low = static_cast<uint64_t>(product);
    if (low < bound) {
      const uint64_t threshold = (0 - bound) % bound;
      while (low < threshold) {
        product = static_cast<unsigned __int128>(next()) * bound;
        low = static_cast<uint64_t>(product);
      }
    }
    const uint64_t result = static_cast<uint64_t>(product >> 64);
    COWORKER_ASSERT(result < bound);
    return result;
  }

  // Uniform in [low, high], inclusive.
  constexpr uint64_t between(uint64_t low, uint64_t high) {
    COWORKER_ASSERT(low <= high);
    if (high - low == UINT64_MAX) return next();
    return low + below(high - low + 1);
  }

  // True with probability numerator / denominator.
  constexpr bool chance(uint64_t numerator, uint64_t denominator) {
    COWORKER_ASSERT(denominator > 0);
    COWORKER_ASSERT(numerator <= denominator);
    return below(denominator) < numerator;
  }

  // True with probability per_mille / 1000.
  constexpr bool chance_per_mille(uint64_t per_mille) { return chance(per_mille, 1000); }

 private:
  static constexpr uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

  uint64_t _state[4] = {};
};

}  // namespace coworker::consensus
