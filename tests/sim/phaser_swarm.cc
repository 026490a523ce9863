#include "tests/sim/phaser_swarm.h"

#include <fmt/core.h>

#include <algorithm>

#include "bucket/distributor.h"
#include "consensus/assert.h"

namespace coworker::sim {

using consensus::Government;
using consensus::PhaserMessage;

PhaserSwarm::PhaserSwarm(uint64_t seed, const PhaserSwarmOptions& options, Trace& trace)
    : _options(options),
      _trace(trace),
      _prng(seed ^ 0x70686173657273ull),
      _network(_prng, options.participants, options.network),
      _checker(options.buckets),
      _workload(_prng, options.workload, _checker) {
  COWORKER_ASSERT(options.participants >= 1);
  // Every government at its full size, from the distributor's targets.
  bucket::Distributor distributor(options.buckets, options.replicas);
  for (ParticipantId id = 1; id <= options.participants; id++) distributor.admit(id);
  for (uint32_t b = 0; b < options.buckets; b++) {
    _truth.push_back(Government{_slot, distributor.government(b)});
  }
  for (ParticipantId id = 1; id <= options.participants; id++) {
    Node& node = _nodes[id];
    node.disk = std::make_unique<Disk>(options.disk,
                                       consensus::derive_seed(seed, (uint64_t{10} << 32) | id));
    boot(id);
  }
}

PhaserSwarm::~PhaserSwarm() = default;

void PhaserSwarm::log(std::string_view name, uint64_t a, uint64_t b) {
  _trace.event(_now, name, a, b);
  if (_trace.verbose()) _trace.note(_now, fmt::format("** {} {} {}", name, a, b));
}

void PhaserSwarm::boot(ParticipantId id) {
  Node& node = _nodes.at(id);
  COWORKER_ASSERT(node.host == nullptr);
  node.host = std::make_unique<PhaserHost>(id, _options.phaser, *node.disk, _prng, *this);
  node.restart_at = 0;
  node.boots++;
  // A restarted participant recovers the membership state and catches up:
  // it learns every current government now; older news is superseded.
  std::erase_if(_news, [&](const News& n) { return n.to == id; });
  node.news_at = _now;
  for (uint32_t b = 0; b < _options.buckets; b++) node.host->government(_now, b, _truth[b]);
  node.applied = _slot;
  log("boot", id, _slot);
}

// ---- the world ------------------------------------------------------------------------

Government PhaserSwarm::government(uint32_t bucket) const { return _truth.at(bucket); }

std::vector<ParticipantId> PhaserSwarm::participants() const {
  std::vector<ParticipantId> ids;
  for (const auto& [id, node] : _nodes) ids.push_back(id);
  return ids;
}

const DurableImage& PhaserSwarm::image(ParticipantId id) const {
  return _nodes.at(id).disk->image();
}

bool PhaserSwarm::live(ParticipantId id) const {
  return _nodes.at(id).host != nullptr && _departed.count(id) == 0;
}

ParticipantId PhaserSwarm::leader_of(uint32_t bucket) const { return _truth.at(bucket).leader(); }

std::set<uint32_t> PhaserSwarm::dead_buckets() const {
  std::set<uint32_t> dead;
  for (uint32_t b = 0; b < _options.buckets; b++) {
    bool any = false;
    for (ParticipantId m : _truth[b].replicas) any |= !_nodes.at(m).lost;
    if (!any) dead.insert(b);
  }
  return dead;
}

// ---- effects of the hosts -------------------------------------------------------------

void PhaserSwarm::send(ParticipantId from, ParticipantId to, PhaserMessage message) {
  _network.send(_now, from, to, Payload{std::move(message)});
}

void PhaserSwarm::reply(ParticipantId at, const consensus::Reply& reply) {
  _workload.on_emitted(reply);  // acknowledged now, delivered or not
  if (!_healed && _prng.chance(_options.crash_after_answer_per_mille, 1000)) {
    // Not now: we are inside the host's call; at the end of this step.
    _crash_after_step.push_back(at);
  }
  // The client hears nothing from a participant it cannot reach.
  if (_nodes.at(at).cut_until > _now) return;
  if (!_healed && _prng.chance(_options.client_drop_per_mille, 1000)) return;
  ClientPacket packet;
  packet.deliver = _now + 1 + _prng.below(3);
  packet.sequence = _sequence++;
  packet.request = false;
  packet.at = at;
  packet.reply = reply;
  _clients.push_back(std::move(packet));
}

void PhaserSwarm::report(ParticipantId at, uint32_t bucket, ParticipantId silent) {
  // The membership takes reports from members only, about members.
  if (_departed.count(at) != 0 || _departed.count(silent) != 0) return;
  if (!_truth[bucket].contains(silent) || !_truth[bucket].contains(at)) return;
  if (_nodes.at(at).cut_until > _now) return;  // the report cannot reach it
  _nodes.at(silent).reported = true;
  log("report", at, silent);
}

void PhaserSwarm::leader_committed(ParticipantId at, const consensus::Write& write) {
  _checker.leader_committed(*this, at, write);
}

void PhaserSwarm::repair(ParticipantId at, uint32_t bucket) {
  // Nothing corrupts a disk here: a replica that cannot follow its leader is
  // a protocol bug.
  _checker.fail(fmt::format("participant {} bucket {}: marked for repair", at, bucket));
}

// ---- the oracle membership ------------------------------------------------------------

bool PhaserSwarm::reachable(ParticipantId id) const {
  const Node& node = _nodes.at(id);
  if (node.host == nullptr || node.cut_until > _now || node.reported) return false;
  // A participant whose disk is stuck for the departure timeout stops
  // answering heartbeats (DESIGN §4).
  const bool stuck = node.disk->hung() && _now - node.hung_since >= _options.departure_ticks;
  return !stuck;
}

bool PhaserSwarm::lease_valid(ParticipantId id) const {
  const Node& node = _nodes.at(id);
  Tick best = 0;
  bool any = false;
  for (const auto& [sent, slot] : node.grants) {
    if (slot <= node.applied) {
      best = std::max(best, sent);
      any = true;
    }
  }
  return any && best + _options.lease_ticks > _now;
}

void PhaserSwarm::oracle() {
  for (auto& [id, node] : _nodes) {
    if (_departed.count(id) != 0) continue;
    if (reachable(id)) {
      node.last_grant = _now;
      if (_options.grant_delay_max == 0) {
        node.grants.emplace_back(_now, _slot);
      } else if (!_prng.chance(_options.grant_drop_per_mille, 1000)) {
        _grants.push_back(Grant{_now + _prng.between(1, _options.grant_delay_max), id,
                                node.boots, _now, _slot});
      }
    }
    std::erase_if(node.grants, [&](const auto& g) { return g.first + _options.lease_ticks <= _now; });
  }
  for (auto& [id, node] : _nodes) {
    if (_departed.count(id) != 0) continue;
    const Tick timeout = _options.departure_ticks;
    const bool down = node.host == nullptr && _now - node.down_since >= timeout;
    const bool cut = node.cut_until > _now && _now - node.cut_since >= timeout;
    const bool stuck = node.disk->hung() && _now - node.hung_since >= timeout;
    if (!(down || cut || stuck || node.reported)) continue;
    // Only once no lease it could hold is left (DESIGN §3).
    if (_now < node.last_grant + _options.lease_ticks + _options.lease_margin) continue;
    depart(id);
  }
}

void PhaserSwarm::depart(ParticipantId id) {
  bool sole = false;
  std::vector<uint32_t> changed;
  for (uint32_t b = 0; b < _options.buckets; b++) {
    auto& replicas = _truth[b].replicas;
    if (std::find(replicas.begin(), replicas.end(), id) == replicas.end()) continue;
    if (replicas.size() == 1) {
      sole = true;  // the last survivor: marked unreachable, never departed
      continue;
    }
    std::erase(replicas, id);
    changed.push_back(b);
  }
  if (!sole) _departed.insert(id);
  if (changed.empty() && sole) {
    _nodes.at(id).reported = false;  // unreachable: waits to come back
    return;
  }
  _slot++;
  for (uint32_t b : changed) {
    _truth[b].slot = _slot;
    announce(b);
  }
  log(sole ? "unreachable" : "depart", id, _slot);
  if (!sole) {
    Node& node = _nodes.at(id);
    News news;
    news.to = id;
    news.slot = _slot;
    news.departed = true;
    news.deliver = std::max(node.news_at, _now + news_delay());
    news.sequence = _sequence++;
    node.news_at = news.deliver;
    _news.push_back(std::move(news));
  } else {
    _nodes.at(id).reported = false;
  }
}

void PhaserSwarm::announce(uint32_t bucket) {
  for (auto& [id, node] : _nodes) {
    if (_departed.count(id) != 0) continue;
    News news;
    news.to = id;
    news.slot = _slot;
    news.bucket = bucket;
    news.government = _truth[bucket];
    news.deliver = std::max(node.news_at, _now + news_delay());
    news.sequence = _sequence++;
    node.news_at = news.deliver;
    _news.push_back(std::move(news));
  }
}

// A participant applies the membership log in slot order, so its news
// arrives in order whatever the network does; a lost message is fetched
// again (Paxos catch-up), which only delays it and what follows it.
Tick PhaserSwarm::news_delay() {
  Tick delay = _prng.below(_options.notify_delay_max + 1);
  if (_options.news_loss_per_mille != 0 && _prng.chance(_options.news_loss_per_mille, 1000)) {
    delay += _prng.between(_options.notify_delay_max + 1, _options.departure_ticks);
  }
  return delay;
}

void PhaserSwarm::deliver_grants() {
  std::erase_if(_grants, [&](const Grant& grant) {
    if (grant.deliver > _now) return false;
    Node& node = _nodes.at(grant.to);
    if (node.host != nullptr && node.boots == grant.boot && node.cut_until <= _now) {
      node.grants.emplace_back(grant.sent, grant.slot);
    }
    return true;
  });
}

void PhaserSwarm::deliver_news() {
  std::sort(_news.begin(), _news.end(), [](const News& a, const News& b) {
    return a.deliver != b.deliver ? a.deliver < b.deliver : a.sequence < b.sequence;
  });
  std::vector<News> keep;
  std::set<ParticipantId> blocked;
  std::map<ParticipantId, consensus::Slot> applied;  // the highest slot delivered now
  for (News& news : _news) {
    Node& node = _nodes.at(news.to);
    if (news.deliver > _now || blocked.count(news.to) != 0) {
      keep.push_back(std::move(news));
      continue;
    }
    if (node.host == nullptr) continue;  // a restart catches up in full
    if (node.cut_until > _now) {
      // Cut off: it learns nothing until it is reachable again, in order.
      blocked.insert(news.to);
      keep.push_back(std::move(news));
      continue;
    }
    if (news.departed) {
      // Departed: it stops, and could come back only as a new arrival.
      log("learns-departed", news.to, news.slot);
      crash(news.to, true);
      blocked.insert(news.to);
      continue;
    }
    node.host->government(_now, news.bucket, news.government);
    applied[news.to] = std::max(applied[news.to], news.slot);
  }
  _news = std::move(keep);
  // A slot is applied once all its news is: one slot may change several
  // buckets, each its own news, and a grant of that slot must not count
  // while some of them are still on the way (the server applies a slot
  // whole).
  for (const News& news : _news) {
    auto it = applied.find(news.to);
    if (it != applied.end() && news.slot <= it->second) it->second = news.slot - 1;
  }
  for (const auto& [id, slot] : applied) {
    Node& node = _nodes.at(id);
    node.applied = std::max(node.applied, slot);
  }
}

// ---- clients ----------------------------------------------------------------------------

void PhaserSwarm::deliver_clients() {
  std::sort(_clients.begin(), _clients.end(), [](const ClientPacket& a, const ClientPacket& b) {
    return a.deliver != b.deliver ? a.deliver < b.deliver : a.sequence < b.sequence;
  });
  std::vector<ClientPacket> due;
  std::vector<ClientPacket> keep;
  for (ClientPacket& p : _clients) (p.deliver <= _now ? due : keep).push_back(std::move(p));
  _clients = std::move(keep);
  for (ClientPacket& p : due) {
    if (!p.request) {
      _workload.on_reply(_now, p.reply);
      continue;
    }
    Node& node = _nodes.at(p.attempt.target);
    if (node.host == nullptr || node.cut_until > _now) continue;  // lost; the client times out
    node.host->append(_now, p.attempt.bucket, p.attempt.token, std::move(p.attempt.messages));
  }
  const auto target = [&](uint32_t bucket, bool other) -> ParticipantId {
    const ParticipantId leader = _truth[bucket].leader();
    if (!other && leader != 0 && _prng.chance(800, 1000)) return leader;
    return 1 + _prng.below(_options.participants);
  };
  for (AppendAttempt& attempt : _workload.tick(_now, target)) {
    if (!_healed && _prng.chance(_options.client_drop_per_mille, 1000)) continue;
    ClientPacket packet;
    packet.deliver = _now + 1 + _prng.below(3);
    packet.sequence = _sequence++;
    packet.attempt = std::move(attempt);
    _clients.push_back(std::move(packet));
  }
}

void PhaserSwarm::serve_reads() {
  if (!_prng.chance(_options.read_per_mille, 1000)) return;
  const uint32_t bucket = static_cast<uint32_t>(_prng.below(_options.buckets));
  // Every participant that believes it leads the bucket and holds a lease
  // serves the read; only they may.
  for (auto& [id, node] : _nodes) {
    if (node.host == nullptr) continue;
    const consensus::Phaser* phaser = node.host->phaser(bucket);
    if (phaser == nullptr || !phaser->serving() || !lease_valid(id)) continue;
    _checker.lease_read(id, bucket, phaser->commit_end());
  }
}

// ---- faults -----------------------------------------------------------------------------

void PhaserSwarm::crash(ParticipantId id, bool for_good) {
  Node& node = _nodes.at(id);
  if (node.host == nullptr) return;
  node.host.reset();
  node.disk->crash();
  if (_trace.verbose()) {
    _trace.note(_now, fmt::format("disk of {}: {}", id, node.disk->last_crash()));
  }
  node.down_since = _now;
  node.hung_until = 0;
  node.grants.clear();
  if (for_good) {
    node.lost = true;
    node.restart_at = 0;
  } else {
    node.restart_at = _now + _prng.between(_options.down_min, _options.down_max);
  }
  log(for_good ? "crash-for-good" : "crash", id, node.restart_at);
}

void PhaserSwarm::restart(ParticipantId id) {
  Node& node = _nodes.at(id);
  if (node.host != nullptr || node.lost || _departed.count(id) != 0) return;
  boot(id);
}

void PhaserSwarm::cut_off(ParticipantId id, Tick until, bool one_way) {
  Node& node = _nodes.at(id);
  const bool outbound = !one_way || _prng.chance(1, 2);
  const bool inbound = !one_way || !outbound;
  for (const auto& [other, n] : _nodes) {
    if (other == id) continue;
    if (outbound) _network.block(id, other, until);
    if (inbound) _network.block(other, id, until);
  }
  if (node.cut_until <= _now) node.cut_since = _now;
  node.cut_until = std::max(node.cut_until, until);
  log(one_way ? "cut-one-way" : "cut", id, until);
}

void PhaserSwarm::cut_link(uint32_t bucket, Tick until) {
  const auto& replicas = _truth[bucket].replicas;
  if (replicas.size() < 2) return;
  const ParticipantId leader = replicas[0];
  const ParticipantId replica = replicas[1 + _prng.below(replicas.size() - 1)];
  // 0: both ways; 1: the leader deaf to the replica; 2: the replica deaf.
  const uint64_t how = _prng.below(3);
  if (how != 1) _network.block(leader, replica, until);
  if (how != 2) _network.block(replica, leader, until);
  log(how == 0 ? "cut-link" : (how == 1 ? "cut-link-to-leader" : "cut-link-to-replica"),
      leader * 1000 + replica, until);
}

void PhaserSwarm::hang(ParticipantId id, Tick until) {
  Node& node = _nodes.at(id);
  if (node.host == nullptr || node.disk->hung()) return;
  node.disk->hang();
  node.hung_since = _now;
  node.hung_until = until;
  log("hang", id, until);
}

void PhaserSwarm::faults() {
  const auto any_up = [&]() -> ParticipantId {
    std::vector<ParticipantId> up_ids;
    for (const auto& [id, node] : _nodes) {
      if (node.host != nullptr && _departed.count(id) == 0) up_ids.push_back(id);
    }
    return up_ids.empty() ? 0 : up_ids[_prng.below(up_ids.size())];
  };
  const auto leader = [&]() -> ParticipantId {
    const ParticipantId id = _truth[_prng.below(_options.buckets)].leader();
    return id != 0 && up(id) ? id : 0;
  };
  for (auto& [id, node] : _nodes) {
    if (node.host == nullptr && node.restart_at != 0 && node.restart_at <= _now) restart(id);
    if (node.host != nullptr && node.disk->hung() && node.hung_until <= _now) {
      // Failed, the stuck fdatasync stops the participant (disk.h).
      if (node.disk->end_hang() == Disk::SyncEnd::failed) {
        log("sync-failed", id, 0);
        crash(id, false);
      }
    }
  }
  if (_prng.chance(_options.crash_per_mille, 1000)) {
    if (ParticipantId id = any_up()) {
      const bool for_good = _lost < _options.lost_max && _prng.chance(1, 3);
      if (for_good) _lost++;
      crash(id, for_good);
    }
  }
  if (_prng.chance(_options.leader_crash_per_mille, 1000)) {
    if (ParticipantId id = leader()) crash(id, false);
  }
  if (_prng.chance(_options.double_crash_per_mille, 1000)) {
    // Two replicas of one government at once (DESIGN §2: survives two losses).
    const auto& replicas = _truth[_prng.below(_options.buckets)].replicas;
    if (replicas.size() >= 3) {
      crash(replicas[1], false);
      crash(replicas[2], false);
    }
  }
  // One draw per statement: argument evaluation order differs between
  // compilers, and the trace must not.
  const auto partition = [&](ParticipantId id) {
    const Tick until = _now + _prng.between(_options.partition_min, _options.partition_max);
    const bool one_way = _prng.chance(_options.one_way_per_mille, 1000);
    cut_off(id, until, one_way);
  };
  if (_prng.chance(_options.partition_per_mille, 1000)) {
    if (ParticipantId id = any_up()) partition(id);
  }
  if (_prng.chance(_options.leader_partition_per_mille, 1000)) {
    if (ParticipantId id = leader()) partition(id);
  }
  if (_prng.chance(_options.hang_per_mille, 1000)) {
    if (ParticipantId id = any_up()) hang(id, _now + _prng.between(_options.hang_min, _options.hang_max));
  }
  // Drawn only where enabled, so the other families' draws stay the same.
  if (_options.link_cut_per_mille != 0 && _prng.chance(_options.link_cut_per_mille, 1000)) {
    const uint32_t bucket = static_cast<uint32_t>(_prng.below(_options.buckets));
    const Tick until = _now + _prng.between(_options.partition_min, _options.partition_max);
    cut_link(bucket, until);
  }
}

void PhaserSwarm::heal() {
  _healed = true;
  _network.heal();
  NetworkOptions calm = _network.options();
  calm.drop_per_mille = 0;
  calm.duplicate_per_mille = 0;
  calm.stale_per_mille = 0;
  _network.set_options(calm);
  for (auto& [id, node] : _nodes) {
    node.cut_until = 0;
    if (node.host != nullptr && node.disk->hung()) node.disk->release();
    if (node.host == nullptr) restart(id);
  }
  _workload.stop_new_windows();
  log("heal", 0, 0);
}

// ---- the step ---------------------------------------------------------------------------

void PhaserSwarm::step() {
  _now++;
  if (!_healed) faults();
  oracle();
  deliver_grants();
  deliver_news();
  for (auto& [id, node] : _nodes) {
    if (node.host != nullptr) node.host->tick(_now, 1);
  }
  _network.deliver_due(_now, [&](const Packet& packet) {
    Node& node = _nodes.at(packet.to);
    if (node.host == nullptr) return;
    _trace.event(_now, "deliver", packet.from, packet.to, digest_payload(packet.payload));
    if (_trace.verbose()) {
      _trace.note(_now, fmt::format("{} -> {} {} {}", packet.from, packet.to,
                                    payload_name(packet.payload), describe_payload(packet.payload)));
    }
    node.host->deliver(_now, packet.from, std::get<PhaserMessage>(packet.payload));
  });
  deliver_clients();
  serve_reads();
  for (ParticipantId id : _crash_after_step) crash(id, false);
  _crash_after_step.clear();
  _checker.after_step(*this);
}

bool PhaserSwarm::settled(std::string* why) {
  const std::set<uint32_t> dead = dead_buckets();
  if (!_workload.quiet(dead)) {
    if (why) *why = "windows still open:" + _workload.describe_open();
    return false;
  }
  for (const auto& [id, node] : _nodes) {
    if (node.host == nullptr) continue;
    for (const auto& [token, bucket] : node.host->unanswered()) {
      if (dead.count(bucket) != 0) continue;
      if (why) *why = fmt::format(" participant {} never answered append {} (bucket {})", id, token, bucket);
      return false;
    }
  }
  return _checker.settled(*this, dead, why);
}

}  // namespace coworker::sim
