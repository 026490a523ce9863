#include "bucket/host.h"

#include <algorithm>
#include <limits>
#include <type_traits>
#include <utility>

#include "consensus/assert.h"

namespace coworker::bucket {

using consensus::Phaser;
using consensus::PhaserOutput;

BucketHost::BucketHost(ParticipantId self, Phaser::Config base, uint32_t counter,
                       HostStorage& storage, HostEffects& effects, HostStorage::Ticket floor)
    : _self(self),
      _base(base),
      _storage(storage),
      _effects(effects),
      _floor(floor),
      _counter(counter) {
  COWORKER_ASSERT(self != consensus::no_participant);
  _base.self = self;
  // Step 6: this boot's number, durable before any effect leaves.
  COWORKER_ASSERT(_counter < std::numeric_limits<uint32_t>::max());
  _counter++;
  _base.boot = _counter;
  _floor = std::max(_floor, _storage.stage_counter(_counter));
}

Phaser& BucketHost::phaser_for(uint32_t bucket) {
  auto it = _phasers.find(bucket);
  if (it != _phasers.end()) return *it->second;
  // Recover from what reached the disk (nothing, for a bucket new to us).
  Phaser::Config config = _base;
  config.bucket = bucket;
  const consensus::PhaserDurable* recovered = _storage.recovered(bucket);
  auto phaser = std::make_unique<Phaser>(
      config, recovered == nullptr ? consensus::PhaserDurable{} : *recovered);
  COWORKER_ASSERT(phaser->role() == Phaser::Role::follower);
  return *_phasers.emplace(bucket, std::move(phaser)).first->second;
}

const Phaser* BucketHost::phaser(uint32_t bucket) const {
  auto it = _phasers.find(bucket);
  return it == _phasers.end() ? nullptr : it->second.get();
}

template <typename Fn>
void BucketHost::call(uint32_t bucket, Fn&& fn) {
  Phaser& p = phaser_for(bucket);
  const consensus::WritePtr leading =
      p.role() != Phaser::Role::follower ? p.register_write() : nullptr;
  handle(bucket, fn(p), leading);
}

void BucketHost::handle(uint32_t bucket, PhaserOutput output,
                        const consensus::WritePtr& leading_before) {
  if (!output.persist.empty()) {
    std::vector<consensus::PhaserRecord> records;
    records.reserve(output.persist.size());
    PendingWrite pending;
    pending.bucket = bucket;
    pending.first_phaser_ticket = output.persist.front().ticket;
    bool own_commit = false;
    for (consensus::Persist& p : output.persist) {
      if (const auto* commit = std::get_if<consensus::CommitRecord>(&p.record)) {
        // The write the leader had in flight just committed.
        if (leading_before && commit->first == leading_before->first &&
            commit->mark.end == leading_before->end() &&
            commit->mark.checksum == leading_before->checksum) {
          _effects.committed(bucket, *leading_before);
          own_commit = true;
        }
      }
      COWORKER_ASSERT(p.ticket == pending.first_phaser_ticket + pending.phaser_tickets);
      pending.phaser_tickets++;
      records.push_back(std::move(p.record));
    }
    // A checkpoint (a snapshot a newcomer took) moves the committed end
    // too, and so do a reset (step 9f) and a repair (9g): back to 0.
    const bool commits = std::any_of(records.begin(), records.end(), [](const auto& record) {
      return std::holds_alternative<consensus::CommitRecord>(record) ||
             std::holds_alternative<consensus::CheckpointRecord>(record) ||
             std::holds_alternative<consensus::ResetRecord>(record) ||
             std::holds_alternative<consensus::RepairRecord>(record);
    });
    const bool reset = std::any_of(records.begin(), records.end(), [](const auto& record) {
      return std::holds_alternative<consensus::ResetRecord>(record);
    });
    // The leader's record of its own commit alone: its phaser waits for
    // nothing of it (the answers went with the acks), so it need not take
    // an fdatasync of its own before the next write's register (record.h).
    const Flush flush = own_commit && records.size() == 1 ? Flush::with_next : Flush::now;
    pending.ticket = _storage.stage_phaser(bucket, std::move(records), flush);
    if (reset) _effects.copy_reset(bucket);
    COWORKER_ASSERT(pending.ticket != 0);
    if (commits) _effects.commit_staged(bucket);
    if (!_writes.empty()) COWORKER_ASSERT(pending.ticket > _writes.back().ticket);
    _writes.push_back(std::move(pending));
  }
  output.persist.clear();
  if (_storage.durable() < _floor || !_before_floor.empty()) {
    _before_floor.push_back(Held{bucket, std::move(output)});
    return;
  }
  effects_of(bucket, output);
}

void BucketHost::effects_of(uint32_t bucket, PhaserOutput& output) {
  for (consensus::PhaserSend& send : output.send) {
    COWORKER_ASSERT(send.to != _self);
    _effects.send(send.to, std::move(send.message));
  }
  for (const consensus::Reply& reply : output.reply) _effects.reply(bucket, reply);
  for (ParticipantId silent : output.report) _effects.report(bucket, silent);
  for (const consensus::Fetch& f : output.fetch) _storage.fetch(bucket, f.to, f.from, f.bytes_max);
  if (output.repair) _effects.repair(bucket);
}

std::vector<std::pair<uint32_t, std::vector<consensus::PhaserRecord>>> BucketHost::checkpoints()
    const {
  std::vector<uint32_t> buckets = _storage.recovered_buckets();
  for (const auto& [bucket, p] : _phasers) buckets.push_back(bucket);
  std::sort(buckets.begin(), buckets.end());
  buckets.erase(std::unique(buckets.begin(), buckets.end()), buckets.end());
  std::vector<std::pair<uint32_t, std::vector<consensus::PhaserRecord>>> out;
  out.reserve(buckets.size());
  for (uint32_t bucket : buckets) {
    if (const Phaser* p = phaser(bucket)) {
      out.emplace_back(bucket, p->checkpoint());
    } else {
      const consensus::PhaserDurable* recovered = _storage.recovered(bucket);
      COWORKER_ASSERT(recovered != nullptr);
      out.emplace_back(bucket, consensus::checkpoint_records(*recovered));
    }
  }
  return out;
}

HostStorage::Ticket BucketHost::checkpoint() {
  HostStorage::Ticket last = 0;
  for (auto& [bucket, records] : checkpoints()) {
    const HostStorage::Ticket ticket =
        _storage.stage_phaser(bucket, std::move(records), Flush::now);
    COWORKER_ASSERT(ticket > last);
    last = ticket;
  }
  return last;
}

std::map<uint32_t, consensus::PhaserDurable> BucketHost::images() const {
  std::map<uint32_t, consensus::PhaserDurable> out;
  for (const auto& [bucket, p] : _phasers) out.emplace(bucket, p->image());
  return out;
}

void BucketHost::government(uint32_t bucket, const consensus::Government& government) {
  if (government.start_wait > 0) {
    _start_after[bucket] = _ticks + government.start_wait;
  } else if (government.leader() != _self) {
    _start_after.erase(bucket);
  }
  call(bucket, [&](Phaser& p) { return p.on_government(government); });
  maybe_start(bucket);
}

bool BucketHost::start_pending(uint32_t bucket) const {
  for (const PendingStart& s : _starts) {
    if (s.bucket == bucket) return true;
  }
  return false;
}

// Step 3 of the contract: bump the counter durably, start once it is.
void BucketHost::maybe_start(uint32_t bucket) {
  Phaser& p = phaser_for(bucket);
  if (p.government().leader() != _self || p.role() != Phaser::Role::follower) return;
  if (held(bucket)) return;           // step 5: released later
  if (p.repairing()) return;          // a void copy never leads (phaser.h step 9g)
  if (const auto it = _start_after.find(bucket); it != _start_after.end()) {
    if (_ticks < it->second) return;  // step 3: tick() starts it
    _start_after.erase(it);
  }
  if (start_pending(bucket)) return;  // already on its way
  COWORKER_ASSERT(_counter < std::numeric_limits<uint32_t>::max());
  const consensus::Promise promise{p.government().slot, _counter + 1};
  // A higher promise exists already: a later government names someone else,
  // and we have not heard of it yet. Wait for the news.
  if (promise <= p.promise()) return;
  _counter++;
  const HostStorage::Ticket ticket = _storage.stage_counter(_counter);
  COWORKER_ASSERT(ticket != 0);
  _starts.push_back(PendingStart{ticket, bucket, promise});
}

void BucketHost::append(uint32_t bucket, uint64_t token,
                        std::vector<consensus::BucketEntry> messages) {
  COWORKER_ASSERT(!messages.empty());
  if (!hosts(bucket)) {
    // Not a member here: every message unavailable (the server hops, the
    // simulated client retries).
    consensus::Reply reply{token, std::vector<consensus::MessageResult>(messages.size()), {}};
    _effects.reply(bucket, reply);
    return;
  }
  call(bucket, [&](Phaser& p) { return p.on_append(token, std::move(messages)); });
}

void BucketHost::deliver(ParticipantId from, const consensus::PhaserMessage& message) {
  COWORKER_ASSERT(from != _self);
  const uint32_t bucket = consensus::bucket_of(message);
  call(bucket, [&](Phaser& p) { return p.on_message(from, message); });
}

// Step 4: durable writes and counters, in ticket order across both queues.
void BucketHost::on_durable() {
  if (!_before_floor.empty() && _storage.durable() >= _floor) {
    std::deque<Held> held = std::move(_before_floor);
    _before_floor.clear();
    for (Held& h : held) effects_of(h.bucket, h.output);
  }
  for (;;) {
    // Read again each turn: an effect of the last call (a report through
    // the membership host) may have completed more.
    const HostStorage::Ticket durable = _storage.durable();
    const HostStorage::Ticket write = _writes.empty() ? 0 : _writes.front().ticket;
    const HostStorage::Ticket start = _starts.empty() ? 0 : _starts.front().ticket;
    if (write != 0 && write <= durable && (start == 0 || write < start)) {
      PendingWrite done = std::move(_writes.front());
      _writes.pop_front();
      for (uint32_t i = 0; i < done.phaser_tickets; i++) {
        const uint64_t ticket = done.first_phaser_ticket + i;
        call(done.bucket, [&](Phaser& p) { return p.on_persisted(ticket); });
      }
    } else if (start != 0 && start <= durable) {
      COWORKER_ASSERT(write == 0 || start < write);
      PendingStart done = _starts.front();
      _starts.pop_front();
      Phaser& p = phaser_for(done.bucket);
      if (p.government().leader() == _self && p.role() == Phaser::Role::follower &&
          done.promise > p.promise() && !held(done.bucket) && !p.repairing() &&
          _start_after.count(done.bucket) == 0) {
        call(done.bucket, [&](Phaser& q) { return q.start_leadership(done.promise); });
      } else {
        maybe_start(done.bucket);
      }
    } else {
      break;
    }
  }
}

// Step 5.
BucketHost::Growth BucketHost::prepare(uint32_t bucket, uint64_t step,
                                       const std::vector<ParticipantId>& newcomers) {
  if (newcomers.empty()) {
    // A hold: a leadership already running goes on (it started under a
    // government fed after this boot's recovery); none starts from now on.
    _held.insert(bucket);
    return phaser_for(bucket).repairing() ? Growth::void_copy : Growth::held;
  }
  call(bucket, [&](Phaser& p) { return p.grow(step, newcomers); });
  return phaser_for(bucket).growth_ready(step) ? Growth::ready : Growth::not_ready;
}

void BucketHost::release_hold(uint32_t bucket) {
  _held.erase(bucket);
  const Phaser* p = phaser(bucket);
  if (p == nullptr) return;
  if (p->growing()) call(bucket, [](Phaser& q) { return q.end_growth(); });
  maybe_start(bucket);
}

void BucketHost::fetched(uint32_t bucket, ParticipantId to,
                         std::vector<consensus::WritePtr> writes) {
  if (!hosts(bucket)) return;
  call(bucket, [&](Phaser& p) { return p.on_fetched(to, std::move(writes)); });
}

void BucketHost::fetch_retained(uint32_t bucket, ParticipantId to) {
  if (!hosts(bucket)) return;
  call(bucket, [&](Phaser& p) { return p.on_fetch_retained(to); });
}

void BucketHost::tick(uint64_t now_ms) {
  _ticks++;
  for (auto it = _start_after.begin(); it != _start_after.end();) {
    const uint32_t bucket = it->first;
    const bool due = it->second <= _ticks;
    ++it;  // maybe_start erases a due entry
    if (due) maybe_start(bucket);
  }
  for (auto& [bucket, p] : _phasers) {
    call(bucket, [now_ms](Phaser& q) { return q.on_tick(now_ms); });
  }
}

}  // namespace coworker::bucket
