// MemberSet: a small ordered set of participant ids kept inline — the
// replicas that acked a write, the ones a trailing commit still waits for.
// A government has at most 7 replicas (DESIGN §3 --replicas), twice that
// while it grows; a std::set would allocate a node per insert on the hot
// path of every write. Iterates in ascending order, like std::set.
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>

#include "consensus/assert.h"
#include "consensus/ids.h"

namespace coworker::consensus {

class MemberSet {
 public:
  static constexpr size_t capacity = 16;

  bool contains(ParticipantId id) const { return std::binary_search(begin(), end(), id); }
  size_t count(ParticipantId id) const { return contains(id) ? 1 : 0; }
  void insert(ParticipantId id) {
    ParticipantId* at = std::lower_bound(_ids.data(), _ids.data() + _size, id);
    if (at != _ids.data() + _size && *at == id) return;
    COWORKER_ASSERT(_size < capacity);
    std::move_backward(at, _ids.data() + _size, _ids.data() + _size + 1);
    *at = id;
    _size++;
  }
  void erase(ParticipantId id) {
    ParticipantId* at = std::lower_bound(_ids.data(), _ids.data() + _size, id);
    if (at == _ids.data() + _size || *at != id) return;
    std::move(at + 1, _ids.data() + _size, at);
    _size--;
  }
  template <typename Drop>
  void erase_if(Drop drop) {
    ParticipantId* kept = std::remove_if(_ids.data(), _ids.data() + _size, drop);
    _size = static_cast<size_t>(kept - _ids.data());
  }
  void clear() { _size = 0; }
  size_t size() const { return _size; }
  bool empty() const { return _size == 0; }
  const ParticipantId* begin() const { return _ids.data(); }
  const ParticipantId* end() const { return _ids.data() + _size; }

  friend bool operator==(const MemberSet& a, const MemberSet& b) {
    return std::equal(a.begin(), a.end(), b.begin(), b.end());
  }

 private:
  std::array<ParticipantId, capacity> _ids{};
  size_t _size = 0;
};

}  // namespace coworker::consensus
