#include "tests/sim/app.h"

#include <cstring>

#include "consensus/membership_state.h"
#include "consensus/assert.h"
#include "tests/sim/trace.h"

namespace coworker::sim {

namespace {

constexpr char magic[8] = {'l', 'o', 'g', 'a', 'p', 'p', '0', '1'};

void put64(std::string& out, uint64_t value) {
  for (int i = 0; i < 8; i++) out.push_back(static_cast<char>((value >> (8 * i)) & 0xff));
}

uint64_t get64(const std::string& in, size_t at) {
  uint64_t value = 0;
  for (int i = 0; i < 8; i++) {
    value |= static_cast<uint64_t>(static_cast<unsigned char>(in[at + i])) << (8 * i);
  }
  return value;
}

}  // namespace

// The membership state's chain: one definition for both applications, so
// the agreement checker compares either kind of snapshot with one chain.
uint64_t LogApp::extend(uint64_t chain, const consensus::Entry& entry) {
  return consensus::chain_extend(chain, entry);
}

void LogApp::apply(const consensus::Decided& decided) {
  COWORKER_ASSERT(decided.slot == _applied + 1);
  _chain = extend(_chain, decided.entry);
  _applied = decided.slot;
}

void LogApp::install(const consensus::Snapshot& snapshot) {
  const auto decoded = decode(snapshot);
  COWORKER_ASSERT(decoded.has_value());
  COWORKER_ASSERT(decoded->slot > _applied);
  _applied = decoded->slot;
  _chain = decoded->chain;
}

consensus::Snapshot LogApp::snapshot() const {
  consensus::Snapshot snapshot{_applied, std::string(magic, sizeof magic)};
  put64(snapshot.bytes, _applied);
  put64(snapshot.bytes, _chain);
  return snapshot;
}

std::optional<LogApp::Decoded> LogApp::decode(const consensus::Snapshot& snapshot) {
  if (snapshot.bytes.size() != 24 || std::memcmp(snapshot.bytes.data(), magic, 8) != 0) {
    return std::nullopt;
  }
  Decoded decoded{get64(snapshot.bytes, 8), get64(snapshot.bytes, 16)};
  if (decoded.slot != snapshot.slot) return std::nullopt;
  return decoded;
}

}  // namespace coworker::sim
