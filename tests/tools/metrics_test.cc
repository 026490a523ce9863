// The metrics exposition (tools/coworker/metrics.h): histogram buckets at and
// around their bounds, cumulative rendering, merging the cores' copies, label
// escaping, and a small checker of the Prometheus text format that every
// rendering here must pass.
#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "tools/coworker/metrics.h"

using namespace coworker::server;

namespace {

constexpr double infinity = std::numeric_limits<double>::infinity();
constexpr std::array<double, 3> small_bounds = {1, 2, 4};

std::string render_text(const CoreMetrics& metrics, const ClusterGauges& cluster = {},
                        std::span<const BucketGauge> buckets = {}) {
  std::string out;
  render(out, metrics, cluster, buckets);
  return out;
}

bool has_line(const std::string& text, const std::string& line) {
  return ("\n" + text).find("\n" + line + "\n") != std::string::npos;
}

// Checks `text` against the text format, version 0.0.4, as far as we use it:
// every line is a comment or `name{labels} value`; each family has HELP and
// TYPE before its samples, which are contiguous; no series repeats; counters
// end in _total; each histogram's buckets grow to a last `le="+Inf"` bucket
// equal to its _count. Returns the problems found, none for valid text.
std::vector<std::string> check_exposition(const std::string& text) {
  static const std::string label = R"([a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*")";
  static const std::regex sample_pattern("([a-zA-Z_:][a-zA-Z0-9_:]*)(\\{(?:" + label + "(?:," +
                                         label + ")*)?\\})? ([-+]?[0-9.eE+-]+|[-+]Inf|NaN)");
  static const std::regex le_pattern(R"(le="([^"]*)\")");
  std::vector<std::string> problems;
  if (text.empty() || text.back() != '\n') problems.push_back("no final newline");
  std::set<std::string> helped, closed, series;
  std::map<std::string, std::string> types;
  std::map<std::string, double> last_bucket, last_le, counts;
  std::string current;  // the family of the previous sample
  std::istringstream lines(text);
  std::string line;
  while (std::getline(lines, line)) {
    std::smatch match;
    if (line.starts_with("# HELP ") || line.starts_with("# TYPE ")) {
      std::istringstream words(line.substr(7));
      std::string name, rest;
      words >> name >> rest;
      if (closed.contains(name) || current == name) problems.push_back("late header: " + line);
      if (line[2] == 'H' && !helped.insert(name).second) problems.push_back("two HELP: " + line);
      if (line[2] == 'T' && !types.emplace(name, rest).second) {
        problems.push_back("two TYPE: " + line);
      }
      continue;
    }
    if (line.starts_with("#")) continue;
    if (!std::regex_match(line, match, sample_pattern)) {
      problems.push_back("not a sample: " + line);
      continue;
    }
    std::string name = match[1], labels = match[2];
    double value = std::stod(match[3]);
    auto type_of = [&](const std::string& family) {
      auto found = types.find(family);
      return found == types.end() ? std::string() : found->second;
    };
    std::string family = name;
    for (std::string suffix : {"_bucket", "_sum", "_count"}) {
      if (!name.ends_with(suffix)) continue;
      std::string base = name.substr(0, name.size() - suffix.size());
      if (type_of(base) == "histogram") family = base;
    }
    if (!helped.contains(family) || !types.contains(family)) {
      problems.push_back("undeclared: " + line);
    }
    if (type_of(family) == "counter" && !name.ends_with("_total")) {
      problems.push_back("counter without _total: " + line);
    }
    if (family != current) {
      if (closed.contains(family)) problems.push_back("family split: " + line);
      closed.insert(current);
      current = family;
    }
    if (!series.insert(name + labels).second) problems.push_back("repeated: " + line);
    if (name == family + "_bucket") {
      std::smatch le;
      if (!std::regex_search(labels, le, le_pattern)) {
        problems.push_back("bucket without le: " + line);
        continue;
      }
      double bound = std::stod(le[1]);
      if (last_le.contains(family) && bound <= last_le[family]) problems.push_back("le order");
      if (value < last_bucket[family]) problems.push_back("not cumulative: " + line);
      last_le[family] = bound;
      last_bucket[family] = value;
    }
    if (name == family + "_count") counts[family] = value;
  }
  for (const auto& [family, type] : types) {
    if (type != "histogram") continue;
    if (last_le[family] != infinity) problems.push_back("no +Inf bucket: " + family);
    if (!counts.contains(family) || counts[family] != last_bucket[family]) {
      problems.push_back("+Inf bucket is not _count: " + family);
    }
  }
  return problems;
}

void check_valid(const std::string& text) {
  for (const std::string& problem : check_exposition(text)) FAIL_CHECK(problem);
}

// Traffic for the merge test: sums of these values are exact in binary, so
// the order of additions cannot change a rendered _sum.
void traffic_a(CoreMetrics& metrics) {
  metrics.appends_total += 5;
  metrics.appended_total += 4;
  metrics.peer_bytes_sent_total += 1000;
  metrics.count_answer(200, "ok");
  metrics.count_answer(200, "ok");
  metrics.count_answer(404, "not_found");
  metrics.append_seconds.observe(0.5);
  metrics.append_seconds.observe(0.0009765625);
  metrics.write_bytes.observe(4096);
  metrics.fdatasync_seconds.observe(0.001953125);
}

void traffic_b(CoreMetrics& metrics) {
  metrics.appends_total += 2;
  metrics.unavailable_total += 1;
  metrics.government_changes_total += 3;
  metrics.count_answer(200, "ok");
  metrics.count_answer(503, "unavailable");
  metrics.count_answer(418, "teapot");
  metrics.append_seconds.observe(12);
  metrics.write_bytes.observe(64);
  metrics.write_bytes.observe(65);
}

}  // namespace

TEST_CASE("metrics: histogram: a value equal to a bound lands in that bucket") {
  Histogram histogram{small_bounds};
  for (double value : {1.0, 0.5, -3.0}) histogram.observe(value);   // le="1"
  for (double value : {std::nextafter(1.0, infinity), 2.0}) histogram.observe(value);  // le="2"
  histogram.observe(4);                                              // le="4"
  for (double value : {std::nextafter(4.0, infinity), 1e300}) histogram.observe(value);  // +Inf
  CHECK(histogram.bucket_count(0) == 3);
  CHECK(histogram.bucket_count(1) == 2);
  CHECK(histogram.bucket_count(2) == 1);
  CHECK(histogram.bucket_count(3) == 2);
  CHECK(histogram.count() == 8);
}

TEST_CASE("metrics: histogram: every standard bound, just below and just above") {
  for (std::span<const double> bounds :
       {std::span<const double>(latency_seconds_bounds), std::span<const double>(bytes_bounds)}) {
    for (size_t i = 0; i < bounds.size(); i++) {
      Histogram histogram{bounds};
      histogram.observe(std::nextafter(bounds[i], 0.0));
      histogram.observe(bounds[i]);
      histogram.observe(std::nextafter(bounds[i], infinity));
      CHECK(histogram.bucket_count(i) == 2);
      CHECK(histogram.bucket_count(i + 1) == 1);
      CHECK(histogram.sum() == doctest::Approx(3 * bounds[i]));
    }
  }
}

TEST_CASE("metrics: render: histogram buckets are cumulative up to +Inf, then sum and count") {
  CoreMetrics metrics;
  for (double size : {64.0, 100.0, 1024.0, 5e6, 2e7}) metrics.write_bytes.observe(size);
  const std::string expected =
      "# HELP coworker_write_bytes Size of each phaser write to the log.\n"
      "# TYPE coworker_write_bytes histogram\n"
      "coworker_write_bytes_bucket{le=\"64\"} 1\n"
      "coworker_write_bytes_bucket{le=\"256\"} 2\n"
      "coworker_write_bytes_bucket{le=\"1024\"} 3\n"
      "coworker_write_bytes_bucket{le=\"4096\"} 3\n"
      "coworker_write_bytes_bucket{le=\"16384\"} 3\n"
      "coworker_write_bytes_bucket{le=\"65536\"} 3\n"
      "coworker_write_bytes_bucket{le=\"262144\"} 3\n"
      "coworker_write_bytes_bucket{le=\"1048576\"} 3\n"
      "coworker_write_bytes_bucket{le=\"4194304\"} 3\n"
      "coworker_write_bytes_bucket{le=\"16777216\"} 4\n"
      "coworker_write_bytes_bucket{le=\"+Inf\"} 5\n"
      "coworker_write_bytes_sum 25001188\n"
      "coworker_write_bytes_count 5\n";
  std::string text = render_text(metrics);
  CHECK(text.find(expected) != std::string::npos);

  metrics.append_seconds.observe(0.0001);
  metrics.append_seconds.observe(0.003);
  text = render_text(metrics);
  CHECK(has_line(text, "coworker_append_seconds_bucket{le=\"0.0001\"} 1"));
  CHECK(has_line(text, "coworker_append_seconds_bucket{le=\"0.00025\"} 1"));
  CHECK(has_line(text, "coworker_append_seconds_bucket{le=\"0.0025\"} 1"));
  CHECK(has_line(text, "coworker_append_seconds_bucket{le=\"0.005\"} 2"));
  CHECK(has_line(text, "coworker_append_seconds_bucket{le=\"10\"} 2"));
  CHECK(has_line(text, "coworker_append_seconds_count 2"));
  check_valid(text);
}

TEST_CASE("metrics: merge: two cores merged render as one core that saw everything") {
  CoreMetrics a, b, one;
  traffic_a(a);
  traffic_b(b);
  traffic_a(one);
  traffic_b(one);
  CoreMetrics merged;
  merged.merge(a);
  merged.merge(b);
  CHECK(merged.appends_total == 7);
  CHECK(merged.answers_by_code.at("ok") == 3);
  CHECK(merged.answers_by_status.back() == 1);  // 418 is "other"
  CHECK(merged.append_seconds.count() == 3);
  CHECK(merged.write_bytes.bucket_count(0) == 1);
  CHECK(merged.write_bytes.bucket_count(1) == 1);
  CHECK(render_text(merged) == render_text(one));
  CHECK(render_text(merged) != render_text(a));
}

TEST_CASE("metrics: render: counters come first, each with HELP and TYPE") {
  CoreMetrics metrics;
  metrics.appends_total = 7;
  metrics.connections_issued_total = 2;
  std::string text = render_text(metrics);
  CHECK(text.starts_with("# HELP coworker_appends_total Messages a leader accepted for "
                         "appending.\n# TYPE coworker_appends_total counter\n"
                         "coworker_appends_total 7\n"));
  CHECK(has_line(text, "# TYPE coworker_connections_issued_total counter"));
  CHECK(has_line(text, "coworker_connections_issued_total 2"));
  CHECK(has_line(text, "coworker_reads_total 0"));
}

TEST_CASE("metrics: render: answers by status, with the rest as other, and by code") {
  CoreMetrics metrics;
  metrics.count_answer(200, "ok");
  metrics.count_answer(201, "ok");
  metrics.count_answer(404, "not_found");
  metrics.count_answer(502, "bad_gateway");
  std::string text = render_text(metrics);
  CHECK(has_line(text, "coworker_answers_by_status_total{status=\"200\"} 1"));
  CHECK(has_line(text, "coworker_answers_by_status_total{status=\"201\"} 1"));
  CHECK(has_line(text, "coworker_answers_by_status_total{status=\"500\"} 0"));
  CHECK(has_line(text, "coworker_answers_by_status_total{status=\"other\"} 1"));
  CHECK(has_line(text, "coworker_answers_by_code_total{code=\"ok\"} 2"));
  CHECK(has_line(text, "coworker_answers_by_code_total{code=\"not_found\"} 1"));
  CHECK(has_line(text, "coworker_answers_by_code_total{code=\"bad_gateway\"} 1"));
  check_valid(text);
}

TEST_CASE("metrics: render: label values escape backslash, quote and newline") {
  CoreMetrics metrics;
  metrics.count_answer(400, "a\\b\"c\nd");
  std::string text = render_text(metrics);
  CHECK(has_line(text, R"(coworker_answers_by_code_total{code="a\\b\"c\nd"} 1)"));
  check_valid(text);
}

TEST_CASE("metrics: render: core 0's gauges and each bucket's gauges") {
  ClusterGauges cluster{.members = 3, .membership_slot = 41, .membership_leader = 2,
                        .departures_total = 1, .repair_shrinks_total = 2,
                        .tracked_connections = 9, .tracked_connection_bytes = 4608};
  std::vector<BucketGauge> buckets = {
      {.bucket = 3, .commit = 17, .leader = true, .lag = {{2, 5}, {4, 0}}},
      {.bucket = 9, .commit = 4, .leader = false, .lag = {}},
  };
  std::string text = render_text(CoreMetrics{}, cluster, buckets);
  CHECK(has_line(text, "coworker_members 3"));
  CHECK(has_line(text, "coworker_membership_slot 41"));
  CHECK(has_line(text, "coworker_membership_leader 2"));
  CHECK(has_line(text, "# TYPE coworker_departures_total counter"));
  CHECK(has_line(text, "coworker_departures_total 1"));
  CHECK(has_line(text, "# TYPE coworker_repair_shrinks_total counter"));
  CHECK(has_line(text, "coworker_repair_shrinks_total 2"));
  CHECK(has_line(text, "# TYPE coworker_tracked_connections gauge"));
  CHECK(has_line(text, "coworker_tracked_connection_bytes 4608"));
  CHECK(has_line(text, "coworker_bucket_commit_position{bucket=\"3\"} 17"));
  CHECK(has_line(text, "coworker_bucket_commit_position{bucket=\"9\"} 4"));
  CHECK(has_line(text, "coworker_bucket_leader{bucket=\"3\"} 1"));
  CHECK(has_line(text, "coworker_bucket_leader{bucket=\"9\"} 0"));
  CHECK(has_line(text, "coworker_bucket_replica_lag_positions{bucket=\"3\",replica=\"2\"} 5"));
  CHECK(has_line(text, "coworker_bucket_replica_lag_positions{bucket=\"3\",replica=\"4\"} 0"));
  CHECK(text.find("{bucket=\"9\",replica=") == std::string::npos);
  check_valid(text);
}

TEST_CASE("metrics: render: the exposition passes the checker, idle or busy") {
  check_valid(render_text(CoreMetrics{}));
  CoreMetrics busy;
  traffic_a(busy);
  traffic_b(busy);
  std::vector<BucketGauge> buckets = {{.bucket = 0, .commit = 1, .leader = true, .lag = {{7, 1}}}};
  check_valid(render_text(busy, ClusterGauges{.members = 1}, buckets));
}

TEST_CASE("metrics: the checker itself rejects broken exposition") {
  const std::string good = "# HELP x_total X.\n# TYPE x_total counter\nx_total 1\n";
  CHECK(check_exposition(good).empty());
  CHECK(!check_exposition("x_total 1\n").empty());                      // undeclared
  CHECK(!check_exposition("# HELP x_total X.\n# TYPE x_total counter\nx_total 1").empty());
  CHECK(!check_exposition(good + "x_total 2\n").empty());                // repeated series
  CHECK(!check_exposition("# HELP x X.\n# TYPE x counter\nx 1\n").empty());  // no _total
  CHECK(!check_exposition("# HELP x_total X.\n# TYPE x_total counter\nx_total{a=b} 1\n").empty());
  CHECK(!check_exposition("# HELP x_total X.\n# TYPE x_total counter\nx_total{a=\"\\q\"} 1\n")
             .empty());                                                  // bad escape
  const std::string g = "# HELP g G.\n# TYPE g gauge\n";
  CHECK(!check_exposition(g + "g{a=\"1\"} 1\n" + good + "g{a=\"2\"} 1\n").empty());  // split
  const std::string h = "# HELP h H.\n# TYPE h histogram\n";
  CHECK(check_exposition(h + "h_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 2\nh_sum 3\n"
                             "h_count 2\n").empty());
  CHECK(!check_exposition(h + "h_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 2\nh_sum 3\n"
                              "h_count 3\n").empty());                   // +Inf is not _count
  CHECK(!check_exposition(h + "h_bucket{le=\"1\"} 3\nh_bucket{le=\"+Inf\"} 2\nh_sum 3\n"
                              "h_count 2\n").empty());                   // not cumulative
  CHECK(!check_exposition(h + "h_bucket{le=\"1\"} 1\nh_sum 3\nh_count 1\n").empty());  // no +Inf
}
