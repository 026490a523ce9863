#include "tests/sim/phaser_reference.h"

#include <fmt/core.h>

namespace coworker::sim {

using consensus::CheckpointRecord;
using consensus::CommitRecord;
using consensus::PromiseRecord;
using consensus::RegisterRecord;
using consensus::RepairRecord;
using consensus::ResetRecord;

namespace {

std::string span(const consensus::WritePtr& write) {
  if (write == nullptr) return "none";
  return fmt::format("[{},{}) under {} checksum {:08x}", write->first, write->end(),
                     write->promise.to_string(), write->checksum);
}

bool same_write(const consensus::WritePtr& a, const consensus::WritePtr& b) {
  if (a == nullptr || b == nullptr) return a == b;
  return a->first == b->first && a->end() == b->end() && a->checksum == b->checksum &&
         a->promise == b->promise;
}

}  // namespace

std::optional<std::string> ReplicaReference::fold(const consensus::PhaserRecord& record) {
  if (const auto* repair = std::get_if<RepairRecord>(&record)) {
    // Rule 6.
    *this = ReplicaReference{};
    _promise = repair->promise;
    _void = true;
    return std::nullopt;
  }
  if (_void && !std::holds_alternative<ResetRecord>(record) &&
      !std::holds_alternative<CheckpointRecord>(record)) {
    return std::string("a void copy (repaired) made a promise, register or commit durable");
  }
  if (const auto* p = std::get_if<PromiseRecord>(&record)) {
    // Rule 1.
    if (p->promise > _promise) _promise = p->promise;
    return std::nullopt;
  }
  if (const auto* r = std::get_if<RegisterRecord>(&record)) {
    // Rule 2.
    if (r->write == nullptr) return std::string("a register record without a write");
    if (r->write->first != end()) {
      return fmt::format("a register {} made durable where the committed log ends at {}",
                         span(r->write), end());
    }
    _held = r->write;
    if (r->write->promise > _promise) _promise = r->write->promise;
    return std::nullopt;
  }
  if (const auto* c = std::get_if<CommitRecord>(&record)) {
    // Rule 3.
    if (_held != nullptr && _held->end() == c->mark.end && _held->checksum == c->mark.checksum) {
      _log.insert(_log.end(), _held->entries.begin(), _held->entries.end());
      if (!_held->entries.empty()) _filled = c->mark;
      _last = c->mark;
      _last_first = _held->first;
      _held = nullptr;
      return std::nullopt;
    }
    if (c->mark.end <= end()) return std::nullopt;
    return fmt::format("a commit of a write ending at {} (checksum {:08x}) made durable, but the "
                       "register held is {} and the committed log ends at {}",
                       c->mark.end, c->mark.checksum, span(_held), end());
  }
  if (const auto* reset = std::get_if<ResetRecord>(&record)) {
    // Rule 5.
    const consensus::Promise promise = std::max(_promise, reset->promise);
    *this = ReplicaReference{};
    _promise = promise;
    return std::nullopt;
  }
  // Rule 4.
  const CheckpointRecord& checkpoint = std::get<CheckpointRecord>(record);
  const auto& k = checkpoint.state;
  if (k.commit_end < end()) {
    return fmt::format("a checkpoint at {} made durable where the committed log ends at {}",
                       k.commit_end, end());
  }
  if (k.commit_end > end()) {
    _log.clear();
    _start = k.commit_end;
    _agreed = 0;
    _held = nullptr;
  }
  if (!checkpoint.register_follows) _held = nullptr;
  if (k.promise > _promise) _promise = k.promise;
  _void = false;
  _last = k.last_commit;
  _last_first = k.last_commit_first;
  _filled = k.last_filled;
  return std::nullopt;
}

std::optional<std::string> ReplicaReference::agree(const consensus::PhaserDurable& image) {
  if (image.repairing != _void) {
    return fmt::format("{}, the records' {}", image.repairing ? "void" : "not void",
                       _void ? "void" : "not void");
  }
  if (image.promise != _promise) {
    return fmt::format("promise {}, the records' {}", image.promise.to_string(),
                       _promise.to_string());
  }
  if (image.commit_end != end() || image.log_start != _start ||
      image.log_start + image.log.size() != end()) {
    return fmt::format("committed [{},{}) with {} entries, the records' [{},{})",
                       image.log_start, image.commit_end, image.log.size(), _start, end());
  }
  if (!(image.last_commit == _last) || image.last_commit_first != _last_first) {
    return fmt::format("last commit [{},{}) (checksum {:08x}), the records' [{},{}) ({:08x})",
                       image.last_commit_first, image.last_commit.end,
                       image.last_commit.checksum, _last_first, _last.end, _last.checksum);
  }
  if (!(image.last_filled == _filled)) {
    return fmt::format("newest write with entries ending at {} ({:08x}), the records' at {} "
                       "({:08x})",
                       image.last_filled.end, image.last_filled.checksum, _filled.end,
                       _filled.checksum);
  }
  if (!same_write(image.register_, _held)) {
    return fmt::format("register {}, the records' {}", span(image.register_), span(_held));
  }
  for (; _agreed < _log.size(); _agreed++) {
    if (!(image.log[_agreed] == _log[_agreed])) {
      return fmt::format("entry {} is '{}', the records' '{}'", _start + _agreed,
                         image.log[_agreed].body, _log[_agreed].body);
    }
  }
  return std::nullopt;
}

}  // namespace coworker::sim
