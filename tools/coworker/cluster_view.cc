// ClusterNode::cluster_json: the /v1/cluster body (DESIGN §3 shape), built
// on core 0 from the membership state, the bucket table and the per-bucket
// views every core gathered for the buckets it hosts.
#include <algorithm>
#include <iterator>

#include <fmt/format.h>

#include "http/json.h"
#include "tools/coworker/cluster_node.h"
#include "tools/coworker/participant.h"

namespace coworker::server {

namespace {

void ids(std::string& out, const std::vector<consensus::ParticipantId>& list) {
  out += '[';
  for (size_t i = 0; i < list.size(); i++) fmt::format_to(std::back_inserter(out), "{}{}", i ? ", " : "", list[i]);
  out += ']';
}

std::string_view member_state(consensus::MemberStatus status) {
  switch (status) {
    case consensus::MemberStatus::active: return "serving";
    case consensus::MemberStatus::leaving: return "leaving";
    case consensus::MemberStatus::unreachable: return "unreachable";
  }
  return "serving";
}

}  // namespace

std::string ClusterNode::cluster_json(const std::vector<BucketView>& hosted) const {
  if (!_host) return {};  // start() failed: the process stops
  // The views of the buckets hosted here, by bucket (null where not hosted).
  std::vector<const BucketView*> views(_participant.buckets(), nullptr);
  for (const BucketView& view : hosted) {
    if (view.bucket < views.size()) views[view.bucket] = &view;
  }
  const consensus::MembershipNode& node = _host->node();
  const bucket::BucketTable& table = _host->table();
  std::string out;
  auto put = std::back_inserter(out);
  fmt::format_to(put, "{{\"self\": {}, \"cluster\": \"{:x}\", \"buckets_total\": {}, \"replicas\": {}",
                 self(), _cluster, _participant.buckets(), _participant.flags().replicas);
  const consensus::ParticipantId leader =
      !node.has_paxos() ? 0 : (node.leading() ? self() : node.paxos().leader());
  fmt::format_to(put, ", \"membership\": {{\"leader\": {}, \"slot\": {}, \"voters\": ", leader,
                 node.state().applied());
  ids(out, node.has_paxos() ? node.paxos().latest_voters() : std::vector<consensus::ParticipantId>{});
  // The first slot those voters decide: until every slot before it is
  // decided, the previous voters still decide (DESIGN §5: a change takes
  // effect at a later slot), and losing a majority of those stalls the
  // membership.
  const consensus::Slot voters_from =
      node.has_paxos() && !node.paxos().schedule().empty() ? node.paxos().schedule().rbegin()->first
                                                           : 0;
  fmt::format_to(put, ", \"voters_from\": {}", voters_from);
  out += "}, \"members\": [";
  bool first = true;
  for (const auto& [id, member] : node.state().members()) {
    fmt::format_to(put, "{}{{\"id\": {}, \"http\": ", first ? "" : ", ", id);
    http::json_quote(out, http_part(member.address));
    out += ", \"peer\": ";
    http::json_quote(out, peer_part(member.address));
    out += ", \"state\": ";
    http::json_quote(out, id == self() ? health() : member_state(member.status));
    out += '}';
    first = false;
  }
  out += "], \"buckets\": [";
  for (uint32_t b = 0; b < table.buckets(); b++) {
    const bucket::CurrentGovernment& current = table.current(b);
    const BucketView* view = views[b];
    fmt::format_to(put, "{}{{\"bucket\": {}, \"leader\": {}, \"core\": {}, \"promise\": ",
                   b == 0 ? "" : ", ", b, current.leader(), _participant.core_of(b));
    if (view == nullptr) {
      out += "null";
    } else {
      fmt::format_to(put, "\"{}\"", view->promise.to_string());
    }
    out += ", \"replicas\": ";
    ids(out, current.replicas);
    out += ", \"target\": ";
    ids(out, table.target(b));
    out += ", \"commit\": ";
    if (view == nullptr) {
      out += "null";
    } else {
      fmt::format_to(put, "{}", view->commit);
    }
    out += '}';
  }
  out += "]}\n";
  return out;
}

ClusterGauges ClusterNode::gauges() const {
  ClusterGauges gauges;
  gauges.departures_total = _departures;
  if (!_host) return gauges;
  gauges.repair_shrinks_total = _host->repairs_proposed();
  const consensus::MembershipNode& node = _host->node();
  gauges.members = node.state().members().size();
  gauges.membership_slot = node.state().applied();
  if (node.has_paxos()) gauges.membership_leader = node.paxos().leader();
  return gauges;
}

void ClusterNode::peer_counters(CoreMetrics& metrics) const {
  if (!_peers) return;
  const PeerStats& stats = _peers->stats();
  metrics.peer_bytes_sent_total += stats.bytes_sent;
  metrics.peer_bytes_received_total += stats.bytes_received;
  metrics.peer_frames_sent_total += stats.frames_sent;
  metrics.peer_frames_received_total += stats.frames_received;
}

}  // namespace coworker::server
