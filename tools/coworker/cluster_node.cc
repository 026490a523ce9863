#include "tools/coworker/cluster_node.h"

#include <sys/random.h>

#include <algorithm>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "bucket/repair.h"
#include "consensus/assert.h"
#include "consensus/codec.h"
#include "consensus/membership_codec.h"
#include "consensus/phaser_codec.h"
#include "reactor/loop.h"
#include "reactor/smp.h"
#include "tools/coworker/log.h"
#include "tools/coworker/membership_frame.h"
#include "tools/coworker/participant.h"

namespace coworker::server {

using consensus::ParticipantId;
using reactor::Task;

std::string_view peer_part(std::string_view address) {
  return address.substr(0, address.find('|'));
}

std::string_view http_part(std::string_view address) {
  const size_t bar = address.find('|');
  return bar == std::string_view::npos ? std::string_view{} : address.substr(bar + 1);
}

namespace {

uint64_t random_u64() {
  uint64_t value = 0;
  while (value == 0) {
    if (::getrandom(&value, sizeof value, 0) != sizeof value) value = 0;
  }
  return value;
}

consensus::MembershipConfig membership_config(const Participant& p, uint64_t cluster) {
  const ServerFlags& flags = p.flags();
  consensus::MembershipConfig config;
  config.params = consensus::ClusterParams{cluster, flags.buckets, flags.replicas};
  config.address = p.address();
  config.data_dir = p.data_dir().id;
  config.bootstrap = flags.join.empty() && p.image().membership.identity.data_dir == 0;
  for (const cli::Address& join : flags.join) config.join.push_back(join.to_string());
  config.paxos_timing = p.timing().paxos;
  config.timing = p.timing().membership;
  return config;
}

}  // namespace

ClusterNode::ClusterNode(Participant& participant, Core& core0)
    : _participant(participant),
      _core0(core0),
      _prng(random_u64()),
      _next_connection(participant.image().connection_block_end),
      _connection_end(participant.image().connection_block_end),
      _connection_limit(participant.flags().max_connections,
                        participant.flags().connection_expiry_ms) {
  COWORKER_ASSERT(core0.index() == 0);
  COWORKER_ASSERT(reactor::Loop::current().core() == 0);
}

ClusterNode::~ClusterNode() = default;

Result<void, std::string> ClusterNode::start(std::unique_ptr<PeerTransport> peers) {
  const ServerFlags& flags = _participant.flags();
  auto on_frame = [this](const PeerInfo& from, FrameType type, std::string_view payload) {
    this->on_frame(from, type, payload);
  };
  if (peers) {
    _peers = std::move(peers);
    _peers->hand_over(std::move(on_frame), PeerConfig{}.connect_timeout);
  } else {
    _peers = std::make_unique<PeerTransport>(std::move(on_frame));
    Result<reactor::Endpoint, std::string> endpoint =
        reactor::Endpoint::parse(flags.peer_listen.to_string());
    if (!endpoint) return endpoint.error();
    Result<reactor::Endpoint> bound = _peers->listen(*endpoint);
    if (!bound) {
      return fmt::format("cannot listen on --peer-listen {}: {}", flags.peer_listen.to_string(),
                         bound.error().message());
    }
  }
  // A cluster is born with a random id; a newcomer learns it by arriving,
  // and a participant restarted on its data dir knows it from its state
  // (0 here: the membership node takes it from the snapshot it boots from).
  consensus::MembershipConfig config = membership_config(_participant, 0);
  if (config.bootstrap) config.params.cluster = random_u64();
  if (config.bootstrap) log_info(0, "bootstrapping a new cluster");
  bucket::MembershipEffects& effects = *this;
  _host = std::make_unique<bucket::MembershipHost>(config, _prng, _participant.image().membership,
                                                   _core0.storage(), effects);
  _host->repair(bucket::void_copies(_participant.image()));  // repair.h: shrink them out
  _host->start();
  after_call();
  return {};
}

Task<void> ClusterNode::close() {
  if (_peers) co_await _peers->close();
}

void ClusterNode::tick() {
  if (!_host) return;
  _host->tick();
  log_candidacy();
  // A batch whose fdatasync has not completed for the departure timeout:
  // stop heartbeating, so the membership departs a hung participant.
  const auto started = _core0.store().flush_started();
  const auto hung_for = std::chrono::steady_clock::now() - started.value_or(
                                                               std::chrono::steady_clock::now());
  const bool hung =
      started && hung_for > std::chrono::milliseconds(_participant.flags().departure_timeout_ms);
  _host->storage_hung(_host->node().now(), hung);
  _host->govern();
  after_call();
  expire_calls();
  tick_leave();
}

// Each membership election this participant starts, with what it needs to
// win: a leaderless membership shows in every voter's log why.
void ClusterNode::log_candidacy() {
  const consensus::MembershipNode& node = _host->node();
  if (!node.has_paxos()) return;
  const consensus::Paxos& paxos = node.paxos();
  const uint64_t started = paxos.stats().elections_started;
  if (paxos.self() != _logged_elections_of) {  // a new id: its own Paxos, counting from 0
    _logged_elections_of = paxos.self();
    _logged_elections = 0;
  }
  if (started == _logged_elections) return;
  _logged_elections = started;
  const consensus::Slot from = paxos.decided_through() + 1;
  std::string needs;
  // The configurations governing slots >= from: a majority of each.
  auto it = paxos.schedule().upper_bound(from);
  if (it != paxos.schedule().begin()) --it;
  for (; it != paxos.schedule().end(); ++it) {
    needs += fmt::format("{}voters {} from slot {}", needs.empty() ? "" : ", ",
                         fmt::join(it->second.voters, ","), it->first);
  }
  log_info(0, "membership: no leader heard; campaigning as ballot {}.{} from slot {} ({}; "
           "promised {}.{})", paxos.ballot().round, paxos.ballot().node, from, needs,
           paxos.promised().round, paxos.promised().node);
}

void ClusterNode::on_durable() {
  if (!_host) return;
  _host->on_durable();
  after_call();
}

bucket::HostStorage::Ticket ClusterNode::checkpoint() {
  bucket::HostStorage::Ticket last = _host ? _host->checkpoint() : 0;
  // The end of every block staged so far, a pending one's included: ids
  // from it may be issued before the next round, and the segment holding
  // its own record may be retired (a few ids skipped after a crash are
  // harmless; ids issued twice are not).
  const uint64_t end = std::max(_connection_end, _staged_connection_end);
  if (end > 0) last = std::max(last, _core0.storage().stage_connection_block(end));
  return last;
}

void ClusterNode::report(ParticipantId silent) {
  if (!_host) return;
  _host->call([silent](consensus::MembershipNode& node) { return node.report_silent(silent); });
  after_call();
}

void ClusterNode::repair(uint32_t bucket) {
  if (!_host) return;
  _host->repair({bucket});
  after_call();
}

ClusterNode::LeaveStart ClusterNode::leave(Clock::time_point deadline) {
  if (!_host || health() != "serving") return LeaveStart::not_serving;
  if (_leave_deadline) return LeaveStart::leaving;  // asked already
  // Buckets migrate only to active members: with none besides us, a leave
  // could never complete (DESIGN §3 keeps the last copy).
  const consensus::MembershipState& state = _host->node().state();
  bool others = false;
  for (const auto& [id, member] : state.members()) {
    others |= id != self() && member.status == consensus::MemberStatus::active;
  }
  if (!others) return LeaveStart::alone;
  _leave_deadline = deadline;
  _leave_proposed = Clock::now();
  _host->call([](consensus::MembershipNode& node) { return node.leave(); });
  after_call();
  return LeaveStart::leaving;
}

// The leave{id} goes to the membership leader once: a lost forward, or a
// leader change, would leave it unproposed. Ask again each heartbeat until
// the log marks us leaving; exited() then ends the process (after_call).
void ClusterNode::tick_leave() {
  if (!_leave_deadline) return;
  const Clock::time_point now = Clock::now();
  if (now >= *_leave_deadline) {
    return _participant.fail(
        0, fmt::format("the leave did not complete within --leave-timeout-ms {}; stopping "
                       "without it (still a member: the others depart this participant after "
                       "--departure-timeout-ms)",
                       _participant.flags().leave_timeout_ms));
  }
  const consensus::MembershipNode& node = _host->node();
  const auto heartbeat = std::chrono::milliseconds(_participant.flags().heartbeat_ms);
  if (!node.leaving() && node.state().is_member(node.id()) && now - _leave_proposed >= heartbeat) {
    _leave_proposed = now;
    _host->call([](consensus::MembershipNode& n) { return n.leave(); });
    after_call();
  }
}

Task<Result<consensus::ConnectionId, ClusterNode::ConnectRefusal>> ClusterNode::connect() {
  while (_next_connection >= _connection_end) {
    if (health() != "serving") co_return ConnectRefusal::not_serving;
    if (_block_pending) {
      Status woken = co_await _block_written.wait();
      if (!woken) co_return ConnectRefusal::not_serving;
      continue;
    }
    _block_pending = true;
    const uint64_t end = _connection_end + connection_block;
    _staged_connection_end = std::max(_staged_connection_end, end);
    const bucket::HostStorage::Ticket ticket = _core0.storage().stage_connection_block(end);
    _core0.staged();
    const bool durable = co_await _core0.durable(ticket);
    _block_pending = false;
    _block_written.notify_all();
    if (!durable) co_return ConnectRefusal::not_serving;
    _connection_end = end;
  }
  if (health() != "serving") co_return ConnectRefusal::not_serving;
  COWORKER_ASSERT(_next_connection < _connection_end);
  // Counted here, with no wait between the check and the issue.
  const auto now = std::chrono::steady_clock::now().time_since_epoch();
  if (!_connection_limit.admit(static_cast<uint64_t>(
          std::chrono::duration_cast<std::chrono::milliseconds>(now).count()))) {
    co_return ConnectRefusal::too_many;
  }
  _participant.metrics().connections_issued_total++;
  co_return consensus::ConnectionId{self(), _next_connection++};
}

// ---- frames ------------------------------------------------------------------------------

void ClusterNode::on_frame(const PeerInfo& from, FrameType type, std::string_view payload) {
  if (!_host) return;
  if (type == FrameType::membership) {
    on_membership_frame(from, payload);
  } else if (type == FrameType::phaser) {
    on_phaser_frame(from, payload);
  } else if (type == FrameType::hop) {
    on_hop_frame(from, payload);
  }
}

void ClusterNode::on_membership_frame(const PeerInfo& from, std::string_view payload) {
  _core0.catch_up();  // acks and leases judged on the time that has passed (core.h)
  std::optional<MembershipEnvelope> envelope = open_membership_envelope(payload);
  if (!envelope) return log_warn(0, "a membership frame from {} without envelope", from.address);
  auto message = consensus::decode_membership_message(envelope->body);
  if (!message) {
    // A peer of another membership message format fails on the version
    // byte (membership_codec.h): name both, so a mixed upgrade is plain.
    const std::string_view body = envelope->body;
    const unsigned version = body.empty() ? 0 : static_cast<uint8_t>(body[0]);
    log_warn(0, "a membership message from {} does not decode: {} (format version {}, ours {})",
             from.address, message.error, version,
             static_cast<unsigned>(consensus::membership_message_version));
    return;
  }
  _host->deliver(envelope->from, envelope->to, from.address, *message.value);
  after_call();
}

void ClusterNode::on_phaser_frame(const PeerInfo& from, std::string_view payload) {
  consensus::Reader reader(payload);
  const ParticipantId sender = reader.u64();
  // Our own id from a peer: a peer confused about ids, or our old id's
  // traffic from before a new arrival. Never delivered as if from ourselves.
  if (!reader.ok() || sender == consensus::no_participant || sender == self()) return;
  auto decoded = consensus::decode_phaser_message(payload.substr(payload.size() - reader.left()));
  if (!decoded) {
    log_warn(0, "a phaser message from {} does not decode: {}", from.address, decoded.error);
    return;
  }
  consensus::PhaserMessage message = std::move(*decoded.value);
  const uint32_t bucket = consensus::bucket_of(message);
  if (bucket >= _participant.buckets()) return;
  const unsigned core = _participant.core_of(bucket);
  Participant* p = &_participant;
  auto deliver = [p, core, sender, message = std::move(message)] {
    if (!p->has_core(core)) return;  // the process stops
    Core& target = p->core(core);
    if (!target.has_host()) return;
    target.host().deliver(sender, message);
    target.staged();
  };
  if (core == 0) return deliver();
  reactor::post_to(core, std::move(deliver));
}

void ClusterNode::send_phaser(ParticipantId to, std::string bytes) {
  if (!_host || self() == consensus::no_participant) return;
  const consensus::Member* member = _host->node().state().member(to);
  if (member == nullptr) return;  // departed: the phaser learns it from the table
  consensus::Writer writer;
  writer.reserve(bytes.size() + 10);
  writer.u64(self());
  writer.raw(bytes);
  _peers->send(std::string(peer_part(member->address)), FrameType::phaser, writer.data());
}

// ---- membership effects ------------------------------------------------------------------

void ClusterNode::send(const std::string& address, ParticipantId from, ParticipantId to,
                       consensus::MembershipMessage message) {
  _peers->send(std::string(peer_part(address)), FrameType::membership,
               membership_envelope(from, to, message));
}

void ClusterNode::government(uint32_t bucket, const consensus::Government& government) {
  COWORKER_ASSERT(bucket < _participant.buckets());
  _participant.metrics().government_changes_total++;
  const unsigned core = _participant.core_of(bucket);
  Participant* p = &_participant;
  auto feed = [p, core, bucket, government] {
    if (!p->has_core(core)) return;  // the process stops
    Core& target = p->core(core);
    COWORKER_ASSERT(target.has_host());
    target.host().government(bucket, government);
    target.staged();
  };
  if (core == 0) return feed();
  reactor::post_to(core, std::move(feed));  // in order with the holds (smp.h)
}

// The bucket's core holds it and answers; the answer comes back to core 0.
// Calls to one core run in the order sent, behind the governments fed
// before them (so a hold reaches the bucket's host before any client write
// its leadership start could allow, which needs two fdatasyncs first).
void ClusterNode::prepare(uint32_t bucket, uint64_t step,
                          std::vector<consensus::ParticipantId> newcomers) {
  const unsigned core = _participant.core_of(bucket);
  Participant* p = &_participant;
  auto hold = [p, core, bucket, step, newcomers = std::move(newcomers)] {
    if (!p->has_core(core) || !p->core(core).has_host()) {
      return bucket::BucketHost::Growth::not_ready;
    }
    Core& target = p->core(core);
    const bucket::BucketHost::Growth growth = target.host().prepare(bucket, step, newcomers);
    target.staged();
    return growth;
  };
  if (core == 0) return _host->growth_answer(bucket, step, hold());
  reactor::Loop::current().spawn([](ClusterNode* self, unsigned core, uint32_t bucket, uint64_t step,
                                    auto hold) -> Task<void> {
    auto call = reactor::submit_to(core, std::move(hold));  // named: reactor/task.h
    const bucket::BucketHost::Growth growth = co_await call;
    if (!self->_host) co_return;
    self->_host->growth_answer(bucket, step, growth);
    self->after_call();
  }(this, core, bucket, step, std::move(hold)));
}

void ClusterNode::release_hold(uint32_t bucket) {
  const unsigned core = _participant.core_of(bucket);
  Participant* p = &_participant;
  auto release = [p, core, bucket] {
    if (!p->has_core(core) || !p->core(core).has_host()) return;
    p->core(core).host().release_hold(bucket);
    p->core(core).staged();
  };
  if (core == 0) return release();
  reactor::post_to(core, std::move(release));
}

// ---- the participant's life ----------------------------------------------------------------

void ClusterNode::learned(const consensus::Decided& decided) {
  if (decided.entry.noop()) return;
  const std::optional<consensus::MembershipEntry> entry = consensus::decode_entry(decided.entry.value);
  if (!entry || std::holds_alternative<consensus::Acks>(*entry)) return;
  // What was decided, before the state applies it: a depart of a last
  // survivor takes effect as a mark, a retried arrival as nothing (/v1/cluster
  // shows the outcome).
  std::string voters;
  if (decided.entry.reconfigures()) voters = fmt::format(" (voters {})", fmt::join(decided.entry.voters, ","));
  log_info(0, "membership slot {} decided: {}{}", decided.slot, consensus::describe(*entry), voters);
}

void ClusterNode::after_call() {
  _core0.staged();
  const consensus::MembershipNode& node = _host->node();
  if (node.refused()) {
    return _participant.fail(2, "the cluster refused this participant: " + *node.refused());
  }
  if (node.exited()) {
    if (!std::exchange(_exit_requested, true)) _participant.fail(0, "left the cluster");
    return;
  }
  if (node.state().bootstrapped()) {
    const consensus::ClusterParams& params = node.state().params();
    if (params.buckets != _participant.flags().buckets ||
        params.replicas != _participant.flags().replicas) {
      return _participant.fail(
          2, fmt::format("the cluster has --buckets {} --replicas {}; started with {} and {}",
                         params.buckets, params.replicas, _participant.flags().buckets,
                         _participant.flags().replicas));
    }
    if (params.cluster != _cluster) {
      _cluster = params.cluster;
      _peers->set_cluster(_cluster);
      _participant.set_cluster_id(_cluster);
    }
  }
  const ParticipantId id = node.id();
  if (id == consensus::no_participant || id == _hosts_for) return;
  const ParticipantId before = _hosts_for;
  _hosts_for = id;
  _peers->set_self_id(id);
  set_log_participant(id);
  if (before == consensus::no_participant) {
    log_info(0, "arrived: member {}", id);
  } else {
    log_warn(0, "departed as {}, arrived anew as {}", before, id);
  }
  _governing = false;
  reactor::Loop::current().spawn(create_hosts(id, before));
}

// Every core gets its phasers before the first government reaches it.
Task<void> ClusterNode::create_hosts(ParticipantId id, ParticipantId before) {
  Participant* p = &_participant;
  auto create = reactor::Smp::current().broadcast([p, id, before] {
    Core& core = p->core(reactor::Loop::current().core());
    if (before == consensus::no_participant) {
      core.create_host(id);
    } else {
      core.replace_host(id);
    }
  });
  co_await create;
  if (_hosts_for != id) co_return;  // arrived anew again meanwhile: that call feeds
  _governing = true;
  _host->feed_governments();
  after_call();
}

ReadRight ClusterNode::may_read(uint32_t bucket, bool local) {
  COWORKER_ASSERT(bucket < _participant.buckets());
  _core0.catch_up();  // the lease counts the time the process could not (core.h)
  if (!_host) return ReadRight::starting;
  const bucket::CurrentGovernment& current = _host->table().current(bucket);
  if (local) {
    const auto& replicas = current.replicas;
    const bool replica = std::find(replicas.begin(), replicas.end(), self()) != replicas.end();
    return replica ? ReadRight::yes : ReadRight::not_replica;
  }
  if (current.leader() != self() || !_host->node().holds_read_lease()) {
    return ReadRight::not_leader;
  }
  return ReadRight::yes;
}

std::string_view ClusterNode::health() const {
  if (!_host) return "recovering";  // start() failed: the process stops
  const consensus::MembershipNode& node = _host->node();
  if (node.arriving()) return "arriving";
  if (node.leaving() || node.retiring() || node.exited()) return "leaving";
  if (node.recovering() || !_governing) return "recovering";
  return "serving";
}

}  // namespace coworker::server
