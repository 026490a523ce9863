// The distributor: balance, few moves, government shape, determinism.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdint>
#include <set>
#include <vector>

#include "bucket/distributor.h"

using namespace coworker::bucket;

namespace {

// A tiny deterministic generator for the property loops (splitmix64).
struct Mix {
  uint64_t state;
  uint64_t next() {
    uint64_t z = (state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  uint64_t below(uint64_t n) { return next() % n; }
};

uint32_t spread(const Distributor& d) {
  uint32_t low = UINT32_MAX, high = 0;
  for (ParticipantId id : d.eligible()) {
    low = std::min(low, d.leaderships(id));
    high = std::max(high, d.leaderships(id));
  }
  return high - low;
}

}  // namespace

TEST_CASE("distributor: the first participant leads everything") {
  Distributor d(64, 3);
  d.admit(1);
  for (uint32_t b = 0; b < 64; b++) {
    CHECK(d.leader(b) == 1);
    CHECK(d.government(b) == std::vector<ParticipantId>{1});
  }
}

TEST_CASE("distributor: arrivals take exactly what balance needs") {
  Distributor d(64, 3);
  d.admit(1);
  uint64_t before = d.moves();
  d.admit(2);
  CHECK(d.moves() - before == 32);
  CHECK(d.leaderships(1) == 32);
  CHECK(d.leaderships(2) == 32);
  before = d.moves();
  d.admit(3);
  // 64 = 22 + 21 + 21: the newcomer takes 21.
  CHECK(d.moves() - before == 21);
  CHECK(spread(d) <= 1);
}

TEST_CASE("distributor: a withdrawal moves only the leaver's buckets") {
  Distributor d(64, 3);
  for (ParticipantId id = 1; id <= 4; id++) d.admit(id);
  std::vector<ParticipantId> before(64);
  for (uint32_t b = 0; b < 64; b++) before[b] = d.leader(b);
  const uint32_t held = d.leaderships(2);
  const uint64_t moves = d.moves();
  d.withdraw(2);
  CHECK(d.moves() - moves == held);
  for (uint32_t b = 0; b < 64; b++) {
    if (before[b] != 2) CHECK(d.leader(b) == before[b]);
    CHECK(d.leader(b) != 2);
  }
  CHECK(spread(d) <= 1);
}

TEST_CASE("distributor: governments are the leader and its neighbours, right first") {
  Distributor d(8, 3);
  for (ParticipantId id : {1, 2, 3, 4, 5}) d.admit(id);
  for (uint32_t b = 0; b < 8; b++) {
    std::vector<ParticipantId> g = d.government(b);
    REQUIRE(g.size() == 3);
    const auto& e = d.eligible();
    const size_t at = static_cast<size_t>(std::find(e.begin(), e.end(), g[0]) - e.begin());
    CHECK(g[0] == d.leader(b));
    CHECK(g[1] == e[(at + 1) % e.size()]);
    CHECK(g[2] == e[(at + e.size() - 1) % e.size()]);
  }
  Distributor five(8, 5);
  for (ParticipantId id : {1, 2, 3, 4, 5, 6, 7}) five.admit(id);
  for (uint32_t b = 0; b < 8; b++) {
    std::vector<ParticipantId> g = five.government(b);
    CHECK(g.size() == 5);
    CHECK(std::set<ParticipantId>(g.begin(), g.end()).size() == 5);
  }
}

TEST_CASE("distributor: fewer participants than k means all of them, leader first") {
  Distributor d(4, 5);
  d.admit(3);
  d.admit(7);
  for (uint32_t b = 0; b < 4; b++) {
    std::vector<ParticipantId> g = d.government(b);
    REQUIRE(g.size() == 2);
    CHECK(g[0] == d.leader(b));
    CHECK(g[1] == (g[0] == 3 ? 7u : 3u));
  }
}

TEST_CASE("distributor: the last withdrawal leaves buckets without a leader") {
  Distributor d(4, 3);
  d.admit(1);
  d.withdraw(1);
  for (uint32_t b = 0; b < 4; b++) CHECK(d.leader(b) == no_participant);
  d.admit(2);
  for (uint32_t b = 0; b < 4; b++) CHECK(d.leader(b) == 2);
}

TEST_CASE("distributor: random histories keep balance and agree when replayed") {
  for (uint64_t seed = 1; seed <= 200; seed++) {
    Mix mix{seed};
    const uint32_t buckets = 1u << mix.below(8);
    const uint32_t k = mix.below(2) ? 3 : 5;
    Distributor a(buckets, k), b(buckets, k);
    std::vector<ParticipantId> out;
    ParticipantId next = 1;
    for (int step = 0; step < 60; step++) {
      const bool add = a.eligible().empty() || mix.below(3) != 0;
      if (add) {
        // Mostly new arrivals; sometimes a withdrawn one comes back.
        ParticipantId id = next++;
        if (!out.empty() && mix.below(4) == 0) {
          const size_t i = mix.below(out.size());
          id = out[i];
          out.erase(out.begin() + static_cast<std::ptrdiff_t>(i));
        }
        const uint64_t moves = a.moves();
        const uint32_t max_before = [&] {
          uint32_t m = 0;
          for (ParticipantId p : a.eligible()) m = std::max(m, a.leaderships(p));
          return m;
        }();
        a.admit(id);
        b.admit(id);
        // Few moves: never more than the newcomer ends up with, which is at
        // most the old maximum.
        CHECK(a.moves() - moves == (a.eligible().size() == 1 ? buckets : a.leaderships(id)));
        if (a.eligible().size() > 1) CHECK(a.leaderships(id) <= max_before);
        // ...and the newcomer stops at the minimum: one move fewer would
        // break balance.
        for (ParticipantId other : a.eligible()) CHECK(a.leaderships(id) <= a.leaderships(other));
      } else {
        const ParticipantId id = a.eligible()[mix.below(a.eligible().size())];
        a.withdraw(id);
        b.withdraw(id);
        out.push_back(id);
      }
      CHECK(spread(a) <= 1);
      for (uint32_t bucket = 0; bucket < buckets; bucket++) {
        CHECK(a.leader(bucket) == b.leader(bucket));
        CHECK(a.government(bucket) == b.government(bucket));
      }
    }
  }
}
