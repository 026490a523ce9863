#include "tests/sim/membership_host.h"

#include <algorithm>
#include <charconv>

#include "consensus/prng.h"
#include "consensus/assert.h"

namespace coworker::sim {

std::string address_of(ParticipantId host) { return std::to_string(host); }

ParticipantId host_of(const std::string& address) {
  ParticipantId host = 0;
  const auto [end, error] = std::from_chars(address.data(), address.data() + address.size(), host);
  COWORKER_ASSERT(error == std::errc());
  COWORKER_ASSERT(end == address.data() + address.size());
  return host;
}

uint64_t data_dir_of(uint64_t seed, ParticipantId host) {
  return consensus::derive_seed(seed, 0x64617461 + host) | 1;
}

consensus::MembershipDurable static_image(const MembershipSimOptions& options, ParticipantId host,
                                          uint64_t seed) {
  const uint32_t n = options.static_members;
  COWORKER_ASSERT(host >= 1);
  COWORKER_ASSERT(host <= n);
  std::vector<consensus::Member> members;
  std::vector<ParticipantId> ids;
  for (ParticipantId id = 1; id <= n; id++) {
    members.push_back(consensus::Member{id, address_of(id), {data_dir_of(seed, id), 1},
                                        consensus::MemberStatus::active});
    ids.push_back(id);
  }
  const auto state = consensus::MembershipState::genesis(options.params, members);
  bucket::BucketTable table(options.params.buckets, options.params.replicas);
  if (options.one_member_start) {
    table.start_one_member(ids, n);
  } else {
    table.grow_instantly(ids, n);
  }
  consensus::Writer writer;
  state.encode(writer);
  table.encode(writer);
  consensus::Snapshot snapshot{n, writer.take(), {}};
  snapshot.schedule.emplace(1, consensus::ScheduledVoters{0, state.rule_voters()});
  consensus::MembershipDurable image;
  image.identity = consensus::Identity{data_dir_of(seed, host), 1, host, false, {}, 0};
  image.paxos.snapshot = std::move(snapshot);
  return image;
}

namespace {

consensus::MembershipConfig config_for(ParticipantId host, uint32_t hosts, uint64_t seed,
                                       const MembershipSimOptions& options,
                                       const consensus::Paxos::Timing& timing,
                                       const consensus::Paxos::Limits& limits) {
  consensus::MembershipConfig config;
  config.params = options.params_for(host);
  config.address = address_of(host);
  config.data_dir = data_dir_of(seed, host);
  config.bootstrap = options.static_members == 0 && host == 1;
  // As the server: the participant that bootstraps has no --join. After a
  // departure it can only arrive anew through the members it remembers.
  for (ParticipantId other = 1; other <= hosts && !config.bootstrap; other++) {
    if (other != host) config.join.push_back(address_of(other));
  }
  config.paxos_timing = timing;
  config.paxos_limits = limits;
  config.timing = options.timing;
  return config;
}

bool has(const std::vector<ParticipantId>& ids, ParticipantId id) {
  return std::find(ids.begin(), ids.end(), id) != ids.end();
}

}  // namespace

MemberHost::MemberHost(ParticipantId host, uint32_t hosts, uint64_t seed,
                       const MembershipSimOptions& options, const consensus::Paxos::Timing& timing,
                       const consensus::Paxos::Limits& limits, consensus::Prng& prng,
                       const consensus::MembershipDurable& recovered,
                       bucket::HostStorage& storage, bucket::MembershipEffects& effects)
    : _host(host),
      _options(options),
      _prng(prng),
      _engine(config_for(host, hosts, seed, options, timing, limits), prng, recovered, storage,
              effects) {}

void MemberHost::tick_phasers(Tick now, std::vector<std::pair<ParticipantId, Probe>>& probes,
                              std::vector<consensus::MembershipOutput>& outputs) {
  if (!node().has_paxos() || node().stuck() || node().recovering()) return;
  if (_options.probes) probe_replicas(now, probes, outputs);
  if (_options.executor) execute_steps(now, outputs);
}

bool MemberHost::answered(ParticipantId id, Tick now) const {
  const auto pong = _pong.find(id);
  return pong != _pong.end() && now <= pong->second + 3 * _options.timing.heartbeat_ticks;
}

// A bucket leader probes the replicas of its current government and the
// newcomers of its next step; a replica silent for the departure timeout is
// reported to the membership leader (DESIGN §4).
void MemberHost::probe_replicas(Tick now, std::vector<std::pair<ParticipantId, Probe>>& probes,
                                std::vector<consensus::MembershipOutput>& outputs) {
  if (now < _probe_due) return;
  _probe_due = now + _options.timing.heartbeat_ticks;
  const ParticipantId self = node().id();
  std::vector<ParticipantId> replicas;  // of governments we lead
  std::vector<ParticipantId> targets;   // everyone we probe
  for (uint32_t b = 0; b < table().buckets(); b++) {
    const bucket::CurrentGovernment& current = table().current(b);
    if (current.leader() != self) continue;
    for (ParticipantId id : current.replicas) {
      if (id != self && !has(replicas, id)) replicas.push_back(id);
    }
    if (const auto step = table().next_step(b)) {
      for (ParticipantId id : step->government) {
        if (id != self && !has(targets, id)) targets.push_back(id);
      }
    }
  }
  for (ParticipantId id : replicas) {
    if (!has(targets, id)) targets.push_back(id);
  }
  std::sort(targets.begin(), targets.end());
  for (auto it = _probing_since.begin(); it != _probing_since.end();) {
    it = has(targets, it->first) ? std::next(it) : _probing_since.erase(it);
  }
  for (ParticipantId id : targets) {
    const consensus::Member* member = node().state().member(id);
    if (member == nullptr) continue;
    _probing_since.try_emplace(id, now);
    probes.emplace_back(host_of(member->address), Probe{self, id, false});
  }
  const Tick timeout = _options.timing.departure_ticks;
  for (ParticipantId id : replicas) {
    const auto pong = _pong.find(id);
    const Tick heard = std::max(pong == _pong.end() ? 0 : pong->second, _probing_since[id]);
    if (now < heard + timeout) continue;
    outputs.push_back(node().report_silent(id));
  }
}

// The migration executor: after a drawn delay, the leader of a bucket
// proposes the ack of its next step — once the new replicas answer probes
// (acclimation), or now and then regardless (a race with their departure
// that makes void acks).
void MemberHost::execute_steps(Tick now, std::vector<consensus::MembershipOutput>& outputs) {
  const ParticipantId self = node().id();
  consensus::Acks acks;
  for (uint32_t b = 0; b < table().buckets(); b++) {
    const auto step = table().next_step(b);
    if (!step || table().current(b).leader() != self) {
      _migrations.erase(b);
      continue;
    }
    auto [it, fresh] = _migrations.try_emplace(b);
    Migration& migration = it->second;
    if (fresh || migration.step != step->step) {
      migration = Migration{step->step,
                            now + _prng.between(_options.executor_delay_min, _options.executor_delay_max),
                            0};
    }
    if (now < migration.due) continue;
    if (migration.proposed_at != 0 && now < migration.proposed_at + _options.executor_retry_ticks) {
      continue;
    }
    bool ready = true;
    for (ParticipantId id : step->government) {
      if (id != self && !has(table().current(b).replicas, id) && !answered(id, now)) ready = false;
    }
    if (!ready && !_prng.chance_per_mille(_options.executor_race_per_mille)) continue;
    migration.proposed_at = now;
    acks.acks.push_back(*step);
  }
  if (acks.acks.empty()) return;
  _acks_proposed += acks.acks.size();
  outputs.push_back(node().propose(acks));
}

std::optional<Probe> MemberHost::on_probe(Tick now, const Probe& probe) {
  if (!node().has_paxos() || probe.to != node().id()) return std::nullopt;
  if (probe.reply) {
    _pong[probe.from] = now;
    return std::nullopt;
  }
  if (node().stuck()) return std::nullopt;  // a stuck core answers nothing
  return Probe{node().id(), probe.from, true};
}

}  // namespace coworker::sim
