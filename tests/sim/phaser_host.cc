#include "tests/sim/phaser_host.h"

#include "reactor/assert.h"

namespace coworker::sim {

using consensus::Phaser;
using consensus::PhaserOutput;

PhaserHost::PhaserHost(ParticipantId self, Phaser::Config base, Disk& disk,
                       consensus::Prng& prng, PhaserHostEffects& effects)
    : _self(self), _base(base), _disk(disk), _prng(prng), _effects(effects) {
  _base.self = self;
  _counter = disk.image().counter;
}

Phaser& PhaserHost::phaser_for(uint32_t bucket) {
  auto it = _phasers.find(bucket);
  if (it != _phasers.end()) return *it->second;
  // Recover from what reached the disk (nothing, for a bucket new to us).
  Phaser::Config config = _base;
  config.bucket = bucket;
  const auto& images = _disk.image().phasers;
  auto image = images.find(bucket);
  auto phaser = std::make_unique<Phaser>(
      config, image == images.end() ? consensus::PhaserDurable{} : image->second);
  return *_phasers.emplace(bucket, std::move(phaser)).first->second;
}

const Phaser* PhaserHost::phaser(uint32_t bucket) const {
  auto it = _phasers.find(bucket);
  return it == _phasers.end() ? nullptr : it->second.get();
}

template <typename Fn>
void PhaserHost::call(Tick now, uint32_t bucket, Fn&& fn) {
  Phaser& p = phaser_for(bucket);
  const consensus::WritePtr leading =
      p.role() != Phaser::Role::follower ? p.register_write() : nullptr;
  handle(now, bucket, fn(p), leading);
}

void PhaserHost::handle(Tick now, uint32_t bucket, PhaserOutput output,
                        const consensus::WritePtr& leading_before) {
  if (!output.persist.empty()) {
    std::vector<DiskRecord> records;
    PendingWrite pending;
    pending.bucket = bucket;
    for (consensus::Persist& p : output.persist) {
      if (const auto* commit = std::get_if<consensus::CommitRecord>(&p.record)) {
        // The write the leader had in flight just committed.
        if (leading_before && commit->first == leading_before->first &&
            commit->mark.end == leading_before->end() &&
            commit->mark.checksum == leading_before->checksum) {
          _effects.leader_committed(_self, *leading_before);
        }
      }
      pending.phaser_tickets.push_back(p.ticket);
      records.push_back(BucketRecord{bucket, std::move(p.record)});
    }
    pending.ticket = _disk.write(now, _prng, std::move(records));
    _writes.push_back(std::move(pending));
  }
  for (consensus::PhaserSend& send : output.send) _effects.send(_self, send.to, std::move(send.message));
  for (const consensus::Reply& reply : output.reply) _effects.reply(_self, reply);
  for (ParticipantId silent : output.report) _effects.report(_self, bucket, silent);
  if (output.repair) _effects.repair(_self, bucket);
}

void PhaserHost::government(Tick now, uint32_t bucket, const consensus::Government& government) {
  call(now, bucket, [&](Phaser& p) { return p.on_government(government); });
  maybe_start(now, bucket);
}

void PhaserHost::maybe_start(Tick now, uint32_t bucket) {
  Phaser& p = phaser_for(bucket);
  if (p.government().leader() != _self || p.role() != Phaser::Role::follower) return;
  for (const PendingStart& s : _starts) {
    if (s.bucket == bucket) return;  // already on its way
  }
  const consensus::Promise promise{p.government().slot, _counter + 1};
  // A higher promise exists already: a later government names someone else,
  // and we have not heard of it yet. Wait for the news.
  if (promise <= p.promise()) return;
  _counter++;
  PendingStart start{_disk.write(now, _prng, {CounterRecord{_counter}}), bucket, promise};
  _starts.push_back(start);
}

void PhaserHost::append(Tick now, uint32_t bucket, uint64_t token,
                        std::vector<consensus::BucketEntry> messages) {
  if (_phasers.count(bucket) == 0) {
    // Not a member here: the server would hop; the simulated client retries.
    consensus::Reply reply{token, std::vector<consensus::MessageResult>(messages.size())};
    _effects.reply(_self, reply);
    return;
  }
  call(now, bucket, [&](Phaser& p) { return p.on_append(token, std::move(messages)); });
}

void PhaserHost::deliver(Tick now, ParticipantId from, const consensus::PhaserMessage& message) {
  const uint32_t bucket = std::visit(
      [](const auto& m) -> uint32_t {
        if constexpr (std::is_same_v<std::decay_t<decltype(m)>, consensus::WritePtr>) {
          return m->bucket;
        } else {
          return m.bucket;
        }
      },
      message);
  call(now, bucket, [&](Phaser& p) { return p.on_message(from, message); });
}

void PhaserHost::tick(Tick now, Tick tick_every) {
  _disk.tick(now);
  // Durable writes, in ticket order across both queues.
  for (;;) {
    const Disk::Ticket write = _writes.empty() ? 0 : _writes.front().ticket;
    const Disk::Ticket start = _starts.empty() ? 0 : _starts.front().ticket;
    if (write != 0 && write <= _disk.durable() && (start == 0 || write < start)) {
      PendingWrite done = std::move(_writes.front());
      _writes.pop_front();
      for (uint64_t ticket : done.phaser_tickets) {
        call(now, done.bucket, [&](Phaser& p) { return p.on_persisted(ticket); });
      }
    } else if (start != 0 && start <= _disk.durable()) {
      PendingStart done = _starts.front();
      _starts.pop_front();
      Phaser& p = phaser_for(done.bucket);
      if (p.government().leader() == _self && p.role() == Phaser::Role::follower &&
          done.promise > p.promise()) {
        call(now, done.bucket, [&](Phaser& q) { return q.start_leadership(done.promise); });
      } else {
        maybe_start(now, done.bucket);
      }
    } else {
      break;
    }
  }
  if (tick_every != 0 && now % tick_every == 0) {
    for (auto& [bucket, p] : _phasers) {
      call(now, bucket, [](Phaser& q) { return q.on_tick(); });
    }
  }
}

}  // namespace coworker::sim
