// The participant's metrics and their exposition for `GET /metrics`, in the
// Prometheus text format, version 0.0.4.
//
// Each core owns one CoreMetrics for the life of the process and is the only
// one to update it, with plain (non-atomic) increments. To answer /metrics,
// the core serving the request gathers a copy of every core's CoreMetrics (by
// value, through submit_to), merges the copies into one, and renders it with
// core 0's ClusterGauges and the BucketGauges of every core. Nothing here is
// shared between cores, so nothing here needs a lock.
//
//   CoreMetrics merged;                    // on the serving core
//   for (auto& copy : copies) merged.merge(copy);
//   render(out, merged, cluster, buckets);
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace coworker::server {

// Bucket upper bounds, in seconds, for latencies: 100 µs to 10 s.
inline constexpr std::array<double, 16> latency_seconds_bounds = {
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
    0.05,   0.1,     0.25,   0.5,   1,     2.5,    5,     10};
// Bucket upper bounds, in bytes, for sizes: 64 B to 16 MiB, by fours.
inline constexpr std::array<double, 10> bytes_bounds = {
    64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216};

// The most bounds a Histogram takes: the counts live in a fixed array, so that
// neither observe() nor a copy across cores allocates.
inline constexpr size_t histogram_bounds_max = 16;
static_assert(latency_seconds_bounds.size() <= histogram_bounds_max);
static_assert(bytes_bounds.size() <= histogram_bounds_max);

// A Prometheus histogram with fixed bounds. A value goes into the first bucket
// whose bound is >= the value (`le` is inclusive), or into the +Inf bucket
// past the last bound. Counts are kept per bucket and made cumulative only
// when rendered. The bounds are not copied: they must outlive every copy of
// the Histogram, which the static tables above do.
class Histogram {
 public:
  // `bounds` strictly increasing, finite, at most histogram_bounds_max.
  explicit Histogram(std::span<const double> bounds);

  void observe(double value);  // not NaN
  // Adds `other`'s counts and sum; `other` must have the same bounds.
  void merge(const Histogram& other);

  std::span<const double> bounds() const { return _bounds; }
  // Observations in bucket `index` alone (not cumulative); index
  // bounds().size() is the +Inf bucket.
  uint64_t bucket_count(size_t index) const;
  uint64_t count() const;  // every observation, the +Inf bucket's cumulative count
  double sum() const { return _sum; }

 private:
  std::span<const double> _bounds;
  std::array<uint64_t, histogram_bounds_max + 1> _counts{};
  double _sum = 0;
};

// The HTTP statuses counted one by one; any other status counts as "other".
inline constexpr std::array<int, 13> answer_statuses = {
    200, 201, 400, 404, 405, 409, 410, 413, 414, 429, 431, 500, 503};
// The most distinct answer codes one CoreMetrics holds. Codes are our own
// words from a closed set (http/response.h and the routes), so passing this
// bound is a bug: asserted, never silently folded.
inline constexpr size_t answer_codes_max = 64;

// One core's counters since the process started. Owned by that core; copied
// by value to the core serving /metrics. Every field is a counter (never
// decreases), so merging is adding. A new field must be added to merge() and
// to render's tables in metrics.cc.
struct CoreMetrics {
  uint64_t appends_total = 0;      // messages a leader accepted for appending
  uint64_t appended_total = 0;     // messages committed and answered as new
  uint64_t duplicates_total = 0;   // answered 200 with the original position
  uint64_t superseded_total = 0;   // 409: stragglers of an abandoned window
  uint64_t expired_total = 0;      // 409 connection_expired: the connection's state expired
  uint64_t overloaded_total = 0;   // 429: the bucket's queue was full
  uint64_t unavailable_total = 0;  // messages answered 503
  uint64_t handed_back_total = 0;  // messages a leadership's end handed back (phaser.h step 6)
  uint64_t hops_sent_total = 0;    // requests forwarded to another participant (hop.h)
  uint64_t hops_received_total = 0;
  // Hops whose leader departed or was marked unreachable before answering:
  // ended then with an unknown outcome, not at the hop deadline.
  uint64_t hops_abandoned_total = 0;
  uint64_t long_polls_total = 0;   // reads that waited for new entries
  uint64_t reads_total = 0;
  uint64_t writes_total = 0;       // phaser writes to the log (sizes in write_bytes)
  uint64_t peer_bytes_sent_total = 0;
  uint64_t peer_bytes_received_total = 0;
  uint64_t peer_frames_sent_total = 0;
  uint64_t peer_frames_received_total = 0;
  uint64_t government_changes_total = 0;  // a bucket's government replaced
  // Growth (phaser.h step 9): entries a leader streamed to newcomers, and
  // copies this replica offered that did not match the leader's log and
  // were dropped (step 9f).
  uint64_t catchup_entries_sent_total = 0;
  uint64_t copies_reset_total = 0;
  uint64_t connections_issued_total = 0;  // POST /v1/connect answered

  // Answers by status: slot i counts answer_statuses[i], the last slot the rest.
  std::array<uint64_t, answer_statuses.size() + 1> answers_by_status{};
  // Answers by their `code` word. A map rather than a fixed table so that a
  // new code needs no edit here; it allocates only the first time this core
  // sees a code, and holds at most answer_codes_max of them.
  std::map<std::string, uint64_t, std::less<>> answers_by_code;

  Histogram write_bytes{bytes_bounds};                  // each phaser write's size
  Histogram fdatasync_seconds{latency_seconds_bounds};  // each fdatasync of the log
  Histogram append_seconds{latency_seconds_bounds};     // client-visible append latency

  void merge(const CoreMetrics& other);
  // One answer sent: `code` is the word of its body ("ok", "not_found", ...).
  void count_answer(int status, std::string_view code);
};

// Core 0's view of the membership and its connection table.
struct ClusterGauges {
  uint64_t members = 0;
  uint64_t membership_slot = 0;
  uint64_t membership_leader = 0;  // participant id, 0 for none
  uint64_t departures_total = 0;   // a counter, kept by core 0 alone
  uint64_t repair_shrinks_total = 0;  // a counter: membership_host.h step 6
  uint64_t tracked_connections = 0;
  uint64_t tracked_connection_bytes = 0;
};

// One bucket this participant hosts, from the core that hosts it.
struct BucketGauge {
  uint32_t bucket = 0;
  uint64_t commit = 0;  // commit position
  bool leader = false;  // this participant leads the bucket
  // (replica id, lag in positions), ascending by replica id; known only on
  // the leader, empty elsewhere.
  std::vector<std::pair<uint64_t, uint64_t>> lag;
};

// Appends the exposition to `out`. `buckets` ascending by bucket, each bucket
// once (a repeated series would be invalid exposition). Answers render as two
// families, coworker_answers_by_status_total{status} and
// coworker_answers_by_code_total{code}, because they are counted apart.
void render(std::string& out, const CoreMetrics& merged, const ClusterGauges& cluster,
            std::span<const BucketGauge> buckets);

}  // namespace coworker::server
