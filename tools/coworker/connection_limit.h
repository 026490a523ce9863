// --max-connections (DESIGN §3): how many connections an issuer has live.
//
// The issuer cannot see a connection's use (its messages may go to any
// participant), so "live" here is "issued within the last
// --connection-expiry": a connection issued longer ago and idle since has
// expired in every bucket. What the limit bounds is the rate of new
// connections per issuer (at most `max` per expiry period): a client opening
// a connection per request is refused with 429 instead of growing every
// bucket's dedup table. A connection kept busy for longer than the period
// stays tracked in the buckets it writes to without counting here
// (docs/OPERATIONS.md). A restart forgets the issue times: the count starts
// again from zero.
//
// Pure, one core (core 0 issues every id); times in ms of any monotonic clock.
#pragma once

#include <cstdint>
#include <deque>

namespace coworker::server {

class ConnectionLimit {
 public:
  ConnectionLimit(uint64_t max, uint64_t window_ms) : _max(max), _window_ms(window_ms) {}

  // True, and counted, when one more connection may be issued at `now_ms`.
  bool admit(uint64_t now_ms) {
    forget(now_ms);
    if (_issued.size() >= _max) return false;
    _issued.push_back(now_ms);
    return true;
  }
  // Connections issued within the window before `now_ms`.
  uint64_t live(uint64_t now_ms) {
    forget(now_ms);
    return _issued.size();
  }

 private:
  void forget(uint64_t now_ms) {
    while (!_issued.empty() && now_ms - _issued.front() >= _window_ms) _issued.pop_front();
  }

  uint64_t _max;
  uint64_t _window_ms;
  std::deque<uint64_t> _issued;  // issue times, oldest first; at most _max
};

}  // namespace coworker::server
