#include "tests/sim/phaser_host.h"

#include "consensus/assert.h"

namespace coworker::sim {

PhaserHost::PhaserHost(ParticipantId self, consensus::Phaser::Config base, Disk& disk,
                       consensus::Prng& prng, PhaserHostEffects& effects)
    : _self(self),
      _base(base),
      _prng(prng),
      _disk(disk),
      _effects(effects),
      _storage(disk, prng),
      _host(self, base, disk.recovered().counter, _storage, *this) {}

PhaserHost::PhaserHost(ParticipantId self, PhaserHost& old)
    : _self(self),
      _base(old._base),
      _prng(old._prng),
      _disk(old._disk),
      _effects(old._effects),
      _storage(old._disk, old._prng),
      _host(self, old._base, std::max(old._host.counter(), old._disk.recovered().counter), _storage,
            *this, old._disk.issued()) {
  COWORKER_ASSERT(self != old._self);
  _storage.replace_images(old._storage.replaced());  // buckets the old host never touched
  _storage.replace_images(old._host.images());
}

void PhaserHost::government(Tick now, uint32_t bucket, const consensus::Government& government) {
  _storage.set_now(now);
  _host.government(bucket, government);
}

void PhaserHost::append(Tick now, uint32_t bucket, uint64_t token,
                        std::vector<consensus::BucketEntry> messages) {
  _storage.set_now(now);
  _unanswered.emplace(token, bucket);
  _host.append(bucket, token, std::move(messages));
}

void PhaserHost::deliver(Tick now, ParticipantId from, const consensus::PhaserMessage& message) {
  _storage.set_now(now);
  _host.deliver(from, message);
}

void PhaserHost::tick(Tick now, Tick tick_every) {
  _storage.set_now(now);
  _disk.tick(now);
  _host.on_durable();
  for (const SimStorage::FetchRequest& request : _storage.take_fetches()) {
    if (request.from < retained_start(request.bucket)) {
      _host.fetch_retained(request.bucket, request.to);
    } else {
      _host.fetched(request.bucket, request.to, _storage.read(request));
    }
  }
  if (tick_every != 0 && now % tick_every == 0) {
    _host.tick(clock(now));
    // A checkpoint round now and then, as a server's log store makes before
    // retiring segments (DESIGN §6): the disk image folds it over what came
    // before (PhaserDurable::apply replaces the state), and with log files
    // (log_files.h step 3) a restart may recover from the round alone, the
    // segments before it retired. Staggered by id; no draw from the prng.
    if (++_phaser_ticks % checkpoint_ticks == _self % checkpoint_ticks) {
      checkpoint_round();
      retain();
    }
  }
}

void PhaserHost::checkpoint_round() {
  _storage.stage_round_marker();
  if (_host.counter() > 0) _storage.stage_counter(_host.counter());
  _host.checkpoint();
  _effects.checkpoint_membership(_self);
}

void PhaserHost::retain() {
  for (const auto& [bucket, durable] : _disk.image().phasers) {
    if (bucket % 2 == 0) continue;
    if (auto before = _round_end.find(bucket); before != _round_end.end()) {
      _retained[bucket] = std::max(_retained[bucket], before->second);
    }
    _round_end[bucket] = durable.commit_end;
  }
}

consensus::Position PhaserHost::retained_start(uint32_t bucket) const {
  consensus::Position start = 0;
  if (auto it = _retained.find(bucket); it != _retained.end()) start = it->second;
  const auto& images = _disk.image().phasers;
  if (auto it = images.find(bucket); it != images.end()) {
    start = std::max(start, it->second.log_start);
  }
  return start;
}

bucket::BucketHost::Growth PhaserHost::prepare(Tick now, uint32_t bucket, uint64_t step,
                                               const std::vector<ParticipantId>& newcomers) {
  _storage.set_now(now);
  return _host.prepare(bucket, step, newcomers);
}

void PhaserHost::release_hold(Tick now, uint32_t bucket) {
  _storage.set_now(now);
  _host.release_hold(bucket);
}

void PhaserHost::send(ParticipantId to, consensus::PhaserMessage message) {
  _effects.send(_self, to, std::move(message));
}

void PhaserHost::reply(uint32_t, const consensus::Reply& reply) {
  _unanswered.erase(reply.token);
  _effects.reply(_self, reply);
}

void PhaserHost::report(uint32_t bucket, ParticipantId silent) {
  _effects.report(_self, bucket, silent);
}

void PhaserHost::committed(uint32_t, const consensus::Write& write) {
  _effects.leader_committed(_self, write);
}

void PhaserHost::repair(uint32_t bucket) { _effects.repair(_self, bucket); }

}  // namespace coworker::sim
