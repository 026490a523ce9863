// LogApp: the replicated application the simulator runs on Paxos.
//
// One per simulated participant boot, owned by its Participant; volatile (a
// crash loses it, a restart rebuilds it from the durable snapshot). Its state
// is a chain digest over every decided entry in slot order, so two
// participants agree on a prefix exactly when their chains agree; a snapshot
// is that (slot, chain) pair, 24 opaque bytes to Paxos. The membership issue
// replaces it with the membership state machine behind the same calls.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "consensus/paxos_types.h"

namespace coworker::sim {

using consensus::Slot;

class LogApp {
 public:
  LogApp() = default;

  void apply(const consensus::Decided& decided);
  void install(const consensus::Snapshot& snapshot);
  consensus::Snapshot snapshot() const;

  Slot applied() const { return _applied; }
  uint64_t chain() const { return _chain; }

  // The chain after appending `entry` to a prefix whose chain is `chain`.
  static uint64_t extend(uint64_t chain, const consensus::Entry& entry);
  struct Decoded {
    Slot slot = 0;
    uint64_t chain = 0;
  };
  static std::optional<Decoded> decode(const consensus::Snapshot& snapshot);

 private:
  Slot _applied = 0;
  uint64_t _chain = 0;
};

}  // namespace coworker::sim
