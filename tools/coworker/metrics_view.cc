// GET /metrics: every core's counters copied to the serving core and merged,
// core 0's membership gauges and peer counters, and each core's buckets.
#include <algorithm>

#include "reactor/loop.h"
#include "reactor/smp.h"
#include "tools/coworker/cluster_node.h"
#include "tools/coworker/core.h"
#include "tools/coworker/participant.h"
#include "tools/coworker/routes.h"

namespace coworker::server {

namespace {

// One core's share: a copy of its counters and the gauges of its buckets.
struct CoreShare {
  CoreMetrics metrics;
  std::vector<BucketGauge> buckets;
  uint64_t tracked_connections = 0;
  uint64_t tracked_connection_bytes = 0;
  std::optional<ClusterGauges> cluster;  // core 0's
};

CoreShare share_of(Participant& p) {
  const unsigned core = reactor::Loop::current().core();
  CoreShare share;
  share.metrics = p.metrics();
  if (p.has_core(core)) {
    Core& mine = p.core(core);
    share.buckets = mine.bucket_gauges();
    const Core::Tracked tracked = mine.tracked();
    share.tracked_connections = tracked.connections;
    share.tracked_connection_bytes = tracked.bytes;
  }
  if (core == 0 && p.has_cluster()) {
    share.cluster = p.cluster().gauges();
    p.cluster().peer_counters(share.metrics);
  }
  return share;
}

}  // namespace

reactor::Task<http::Response> metrics_response(Participant& p) {
  Participant* participant = &p;
  auto gather = reactor::Smp::current().broadcast([participant] { return share_of(*participant); });
  std::vector<CoreShare> shares = co_await gather;
  CoreMetrics merged;
  ClusterGauges cluster;
  std::vector<BucketGauge> buckets;
  for (CoreShare& share : shares) {
    merged.merge(share.metrics);
    if (share.cluster) cluster = *share.cluster;
    cluster.tracked_connections += share.tracked_connections;
    cluster.tracked_connection_bytes += share.tracked_connection_bytes;
    for (BucketGauge& gauge : share.buckets) buckets.push_back(std::move(gauge));
  }
  std::sort(buckets.begin(), buckets.end(),
            [](const BucketGauge& a, const BucketGauge& b) { return a.bucket < b.bucket; });
  std::string body;
  render(body, merged, cluster, buckets);
  http::Response response = http::Response::text(200, std::move(body));
  response.content_type = "text/plain; version=0.0.4; charset=utf-8";
  co_return response;
}

}  // namespace coworker::server
