// Trace: the one place every simulated event is fed into the run's digest,
// and (with --verbose) printed.
//
// One Trace per seed, owned by the code that runs the seed; the Simulation
// and its participants only borrow it. The digest mixes integers only (a
// message is reduced to its kind and fields, an entry to its digest), so it
// is the same on every build of one commit. Printing never feeds the digest.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "consensus/paxos_types.h"
#include "tests/sim/network.h"

namespace coworker::sim {

using consensus::ParticipantId;
using consensus::Tick;

class Trace {
 public:
  explicit Trace(bool verbose) : _verbose(verbose) {}

  bool verbose() const { return _verbose; }
  uint64_t digest() const { return _digest; }

  // One event into the digest: a short name and up to six numbers.
  void event(Tick tick, std::string_view name, uint64_t a = 0, uint64_t b = 0, uint64_t c = 0,
             uint64_t d = 0, uint64_t e = 0, uint64_t f = 0);
  // A line for verbose runs (never digested). Callers format only when
  // verbose() is true, so quiet runs pay nothing.
  void note(Tick tick, std::string_view text) const;

  void mix(uint64_t value);

 private:
  bool _verbose;
  uint64_t _digest = 0x6a09e667f3bcc908ULL;
};

// Order-sensitive digests of protocol values (FNV-1a over bytes, mixed).
uint64_t mix64(uint64_t state, uint64_t value);
uint64_t digest_bytes(std::string_view bytes, uint64_t seed = 0);
uint64_t digest_entry(const consensus::Entry& entry);
uint64_t digest_message(const consensus::Message& message);
const char* message_name(const consensus::Message& message);
std::string describe_message(const consensus::Message& message);
uint64_t digest_payload(const Payload& payload);
const char* payload_name(const Payload& payload);
std::string describe_payload(const Payload& payload);

}  // namespace coworker::sim
