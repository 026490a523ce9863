// The metrics of metrics.h: histogram bucketing, merging the cores' copies,
// and the Prometheus text exposition. observe() and count_answer() run on the
// core that owns the CoreMetrics; merge() and render() on the core serving
// /metrics, over copies it owns for the length of one request.
//
// Counters, histograms and core 0's gauges are listed once, in the tables
// below, so that merge() and render() cannot disagree about which fields exist.
#include "tools/coworker/metrics.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <iterator>

#include "consensus/assert.h"

namespace coworker::server {

namespace {

struct CounterFamily {
  std::string_view name;
  std::string_view help;
  uint64_t CoreMetrics::*field;
};

constexpr CounterFamily counter_families[] = {
    {"coworker_appends_total", "Messages a leader accepted for appending.",
     &CoreMetrics::appends_total},
    {"coworker_appended_total", "Messages committed and answered as new.",
     &CoreMetrics::appended_total},
    {"coworker_duplicates_total", "Messages answered with the position of an earlier copy.",
     &CoreMetrics::duplicates_total},
    {"coworker_superseded_total", "Messages answered 409 as stragglers of an abandoned window.",
     &CoreMetrics::superseded_total},
    {"coworker_connections_expired_total",
     "Messages answered 409 connection_expired: their connection's state had expired.",
     &CoreMetrics::expired_total},
    {"coworker_overloaded_total", "Messages answered 429 because the bucket's queue was full.",
     &CoreMetrics::overloaded_total},
    {"coworker_unavailable_total", "Messages answered 503.", &CoreMetrics::unavailable_total},
    {"coworker_handed_back_total", "Messages handed back by a leadership that ended, taken to the next leader.",
     &CoreMetrics::handed_back_total},
    {"coworker_hops_sent_total", "Requests forwarded to another participant.",
     &CoreMetrics::hops_sent_total},
    {"coworker_hops_received_total", "Requests forwarded here by another participant.",
     &CoreMetrics::hops_received_total},
    {"coworker_hops_abandoned_total",
     "Forwarded requests whose leader departed or was marked unreachable before answering.",
     &CoreMetrics::hops_abandoned_total},
    {"coworker_long_polls_total", "Reads that waited for new entries.",
     &CoreMetrics::long_polls_total},
    {"coworker_reads_total", "Reads of committed entries.", &CoreMetrics::reads_total},
    {"coworker_writes_total", "Phaser writes to the log.", &CoreMetrics::writes_total},
    {"coworker_peer_bytes_sent_total", "Bytes sent on peer links.",
     &CoreMetrics::peer_bytes_sent_total},
    {"coworker_peer_bytes_received_total", "Bytes received on peer links.",
     &CoreMetrics::peer_bytes_received_total},
    {"coworker_peer_frames_sent_total", "Frames sent on peer links.",
     &CoreMetrics::peer_frames_sent_total},
    {"coworker_peer_frames_received_total", "Frames received on peer links.",
     &CoreMetrics::peer_frames_received_total},
    {"coworker_government_changes_total", "Times a bucket's government was replaced.",
     &CoreMetrics::government_changes_total},
    {"coworker_connections_issued_total", "Connection ids issued by POST /v1/connect.",
     &CoreMetrics::connections_issued_total},
    {"coworker_catchup_entries_sent_total",
     "Committed entries this participant streamed to newcomers of buckets it leads.",
     &CoreMetrics::catchup_entries_sent_total},
    {"coworker_copies_reset_total",
     "Copies this participant offered that did not match the leader's log, dropped.",
     &CoreMetrics::copies_reset_total},
};

struct HistogramFamily {
  std::string_view name;
  std::string_view help;
  Histogram CoreMetrics::*field;
};

constexpr HistogramFamily histogram_families[] = {
    {"coworker_write_bytes", "Size of each phaser write to the log.", &CoreMetrics::write_bytes},
    {"coworker_fdatasync_seconds", "Duration of each fdatasync of the log.",
     &CoreMetrics::fdatasync_seconds},
    {"coworker_append_seconds", "Client-visible latency of each append.",
     &CoreMetrics::append_seconds},
};

struct ClusterFamily {
  std::string_view name;
  std::string_view help;
  std::string_view type;
  uint64_t ClusterGauges::*field;
};

constexpr ClusterFamily cluster_families[] = {
    {"coworker_members", "Participants in the membership.", "gauge", &ClusterGauges::members},
    {"coworker_membership_slot", "Slot of the membership log last applied.", "gauge",
     &ClusterGauges::membership_slot},
    {"coworker_membership_leader", "Participant id leading the membership, 0 for none.", "gauge",
     &ClusterGauges::membership_leader},
    {"coworker_departures_total", "Participants that left the membership.", "counter",
     &ClusterGauges::departures_total},
    {"coworker_repair_shrinks_total",
     "Shrinks of a void copy of ours out of its bucket proposed (per-bucket repair).", "counter",
     &ClusterGauges::repair_shrinks_total},
    {"coworker_tracked_connections", "Connections in the connection table.", "gauge",
     &ClusterGauges::tracked_connections},
    {"coworker_tracked_connection_bytes", "Bytes held by the connection table.", "gauge",
     &ClusterGauges::tracked_connection_bytes},
};

void append_header(std::string& out, std::string_view name, std::string_view help,
                   std::string_view type) {
  fmt::format_to(std::back_inserter(out), "# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
}

// Prometheus spells the infinities and NaN its own way; fmt's shortest
// round-trip form is fine for the rest ("0.00025", "1", "16777216").
void append_double(std::string& out, double value) {
  if (std::isnan(value)) {
    out += "NaN";
  } else if (std::isinf(value)) {
    out += value > 0 ? "+Inf" : "-Inf";
  } else {
    fmt::format_to(std::back_inserter(out), "{}", value);
  }
}

// Inside a label value, the text format escapes exactly these three.
void append_label_value(std::string& out, std::string_view value) {
  for (char c : value) {
    switch (c) {
      case '\\': out += "\\\\"; break;
      case '"': out += "\\\""; break;
      case '\n': out += "\\n"; break;
      default: out += c;
    }
  }
}

void render_histogram(std::string& out, const HistogramFamily& family, const Histogram& h) {
  append_header(out, family.name, family.help, "histogram");
  auto sink = std::back_inserter(out);
  // Kept per bucket, exposed cumulative: each `le` line counts everything <= its bound.
  uint64_t cumulative = 0;
  for (size_t i = 0; i < h.bounds().size(); i++) {
    cumulative += h.bucket_count(i);
    fmt::format_to(sink, "{}_bucket{{le=\"", family.name);
    append_double(out, h.bounds()[i]);
    fmt::format_to(sink, "\"}} {}\n", cumulative);
  }
  cumulative += h.bucket_count(h.bounds().size());
  COWORKER_ASSERT(cumulative == h.count());
  fmt::format_to(sink, "{}_bucket{{le=\"+Inf\"}} {}\n{}_sum ", family.name, cumulative,
                 family.name);
  append_double(out, h.sum());
  fmt::format_to(sink, "\n{}_count {}\n", family.name, h.count());
}

void render_answers(std::string& out, const CoreMetrics& merged) {
  auto sink = std::back_inserter(out);
  append_header(out, "coworker_answers_by_status_total", "HTTP answers sent, by status.",
                "counter");
  for (size_t i = 0; i < answer_statuses.size(); i++) {
    fmt::format_to(sink, "coworker_answers_by_status_total{{status=\"{}\"}} {}\n",
                   answer_statuses[i], merged.answers_by_status[i]);
  }
  fmt::format_to(sink, "coworker_answers_by_status_total{{status=\"other\"}} {}\n",
                 merged.answers_by_status.back());

  append_header(out, "coworker_answers_by_code_total",
                "HTTP answers sent, by the code in the body.", "counter");
  for (const auto& [code, answers] : merged.answers_by_code) {
    out += "coworker_answers_by_code_total{code=\"";
    append_label_value(out, code);
    fmt::format_to(sink, "\"}} {}\n", answers);
  }
}

void render_buckets(std::string& out, std::span<const BucketGauge> buckets) {
  auto sink = std::back_inserter(out);
  // Each family's samples must be contiguous, hence one pass per family.
  append_header(out, "coworker_bucket_commit_position", "Commit position of each hosted bucket.",
                "gauge");
  for (size_t i = 0; i < buckets.size(); i++) {
    // Ascending, so that no series appears twice.
    if (i > 0) COWORKER_ASSERT(buckets[i - 1].bucket < buckets[i].bucket);
    fmt::format_to(sink, "coworker_bucket_commit_position{{bucket=\"{}\"}} {}\n",
                   buckets[i].bucket, buckets[i].commit);
  }
  append_header(out, "coworker_bucket_leader", "1 if this participant leads the bucket, else 0.",
                "gauge");
  for (const BucketGauge& gauge : buckets) {
    fmt::format_to(sink, "coworker_bucket_leader{{bucket=\"{}\"}} {}\n", gauge.bucket,
                   gauge.leader ? 1 : 0);
  }
  append_header(out, "coworker_bucket_replica_lag_positions",
                "Positions a replica trails the leader's commit by, on the leader.", "gauge");
  for (const BucketGauge& gauge : buckets) {
    for (size_t i = 0; i < gauge.lag.size(); i++) {
      if (i > 0) COWORKER_ASSERT(gauge.lag[i - 1].first < gauge.lag[i].first);
      fmt::format_to(sink,
                     "coworker_bucket_replica_lag_positions{{bucket=\"{}\",replica=\"{}\"}} {}\n",
                     gauge.bucket, gauge.lag[i].first, gauge.lag[i].second);
    }
  }
}

}  // namespace

Histogram::Histogram(std::span<const double> bounds) : _bounds(bounds) {
  COWORKER_ASSERT(bounds.size() <= histogram_bounds_max);
  for (size_t i = 0; i < bounds.size(); i++) {
    COWORKER_ASSERT(std::isfinite(bounds[i]));  // +Inf is implied, never listed
    if (i > 0) COWORKER_ASSERT(bounds[i - 1] < bounds[i]);
  }
}

void Histogram::observe(double value) {
  COWORKER_ASSERT(!std::isnan(value));  // it would land in no bucket and spoil the sum
  // The first bound >= value: a value equal to a bound belongs to that bucket.
  auto index = std::lower_bound(_bounds.begin(), _bounds.end(), value) - _bounds.begin();
  _counts[static_cast<size_t>(index)]++;
  _sum += value;
}

void Histogram::merge(const Histogram& other) {
  COWORKER_ASSERT(std::ranges::equal(_bounds, other._bounds));
  for (size_t i = 0; i <= _bounds.size(); i++) _counts[i] += other._counts[i];
  _sum += other._sum;
}

uint64_t Histogram::bucket_count(size_t index) const {
  COWORKER_ASSERT(index <= _bounds.size());
  return _counts[index];
}

uint64_t Histogram::count() const {
  uint64_t total = 0;
  for (size_t i = 0; i <= _bounds.size(); i++) total += _counts[i];
  return total;
}

void CoreMetrics::merge(const CoreMetrics& other) {
  COWORKER_ASSERT(&other != this);  // merging a copy into itself would double it
  for (const CounterFamily& family : counter_families) this->*family.field += other.*family.field;
  for (const HistogramFamily& family : histogram_families) {
    (this->*family.field).merge(other.*family.field);
  }
  for (size_t i = 0; i < answers_by_status.size(); i++) {
    answers_by_status[i] += other.answers_by_status[i];
  }
  for (const auto& [code, answers] : other.answers_by_code) answers_by_code[code] += answers;
  COWORKER_ASSERT(answers_by_code.size() <= answer_codes_max);
}

void CoreMetrics::count_answer(int status, std::string_view code) {
  COWORKER_ASSERT(status >= 100);
  COWORKER_ASSERT(status <= 599);
  COWORKER_ASSERT(!code.empty());
  // A status not in the list lands in the last slot, "other".
  auto known = std::ranges::find(answer_statuses, status);
  answers_by_status[static_cast<size_t>(known - answer_statuses.begin())]++;
  auto entry = answers_by_code.find(code);
  if (entry == answers_by_code.end()) {
    COWORKER_ASSERT(answers_by_code.size() < answer_codes_max);
    entry = answers_by_code.emplace(std::string(code), 0).first;
  }
  entry->second++;
}

void render(std::string& out, const CoreMetrics& merged, const ClusterGauges& cluster,
            std::span<const BucketGauge> buckets) {
  auto sink = std::back_inserter(out);
  for (const CounterFamily& family : counter_families) {
    append_header(out, family.name, family.help, "counter");
    fmt::format_to(sink, "{} {}\n", family.name, merged.*family.field);
  }
  render_answers(out, merged);
  for (const HistogramFamily& family : histogram_families) {
    render_histogram(out, family, merged.*family.field);
  }
  for (const ClusterFamily& family : cluster_families) {
    append_header(out, family.name, family.help, family.type);
    fmt::format_to(sink, "{} {}\n", family.name, cluster.*family.field);
  }
  render_buckets(out, buckets);
}

}  // namespace coworker::server
