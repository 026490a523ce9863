// Timeout: counts ticks towards a deadline, for the pure state machines.
//
// Owned by the state machine it times (one per purpose), driven only by its
// owner's on_tick(). After it fires, the owner must reset() or stop() it
// before the next tick: a timeout that keeps firing unnoticed is a bug, so
// tick() asserts it (TigerBeetle vsr.Timeout).
#pragma once

#include "consensus/paxos_types.h"
#include "consensus/assert.h"

namespace coworker::consensus {

class Timeout {
 public:
  // Starts (or restarts) counting: fires after `after` more ticks.
  void start(Tick after) {
    COWORKER_ASSERT(after > 0);
    _after = after;
    _ticks = 0;
    _running = true;
  }
  void stop() {
    _running = false;
    _ticks = 0;
  }
  // Restarts with the same length.
  void reset() { start(_after); }

  void tick() {
    if (!_running) return;
    COWORKER_ASSERT(_ticks < _after);  // fired last tick and was not handled
    _ticks++;
  }
  bool fired() const { return _running && _ticks == _after; }
  bool running() const { return _running; }

 private:
  Tick _after = 1;
  Tick _ticks = 0;
  bool _running = false;
};

}  // namespace coworker::consensus
