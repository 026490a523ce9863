#include "tools/bench/report.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <iterator>

#include <fmt/format.h>

#include "consensus/assert.h"
#include "http/json.h"

namespace coworker::bench {
namespace {

double seconds(std::chrono::milliseconds duration) {
  return std::chrono::duration<double>(duration).count();
}

double quantile_ms(const Tally& tally, double q) {
  if (tally.latency.count() == 0) return 0;
  if (q >= 1.0) return static_cast<double>(tally.latency_max_ns) / 1e6;
  // The histogram answers a bucket's upper edge; never above the true max.
  return static_cast<double>(std::min(tally.latency.quantile(q), tally.latency_max_ns)) / 1e6;
}

std::string_view distribution_name(Distribution distribution) {
  return distribution == Distribution::zipf ? "zipf" : "uniform";
}

std::string_view route_name(Route route) { return route == Route::leader ? "leader" : "spread"; }

std::string setup(const BenchOptions& options) {
  std::string loop = options.rate > 0
                         ? fmt::format("open loop at {} windows/s", options.rate)
                         : std::string("closed loop");
  std::string distribution(distribution_name(options.distribution));
  if (options.distribution == Distribution::zipf) {
    distribution += fmt::format(" {:.2f}", options.zipf_exponent);
  }
  return fmt::format(
      "{}, {} connections on {} core{}, windows of {} x {} B, {} identifiers ({}), "
      "{:g} s after {:g} s warm-up, route {}, seed {}",
      loop, options.connections, options.cores, options.cores == 1 ? "" : "s", options.window,
      options.message_bytes, options.identifiers, distribution, seconds(options.duration),
      seconds(options.warmup), route_name(options.route), options.seed);
}

struct Percentile {
  std::string_view name;
  double q;
};
constexpr Percentile percentiles[] = {
    {"p50", 0.5}, {"p90", 0.9}, {"p99", 0.99}, {"p99.9", 0.999}, {"max", 1.0}};

std::string errors_text(const Tally& tally) {
  if (tally.errors.empty()) return "none";
  std::string out;
  for (const auto& [kind, count] : tally.errors) {
    fmt::format_to(std::back_inserter(out), "{}{} {}", out.empty() ? "" : ", ", kind, count);
  }
  return out;
}

}  // namespace

std::string report_text(const BenchOptions& options, const Tally& tally) {
  const double duration = seconds(options.duration);
  std::string out = "coworker-bench: " + setup(options) + "\n";
  auto put = std::back_inserter(out);
  fmt::format_to(put, "  messages/s {:.0f}   windows/s {:.0f}\n",
                 static_cast<double>(tally.measured_messages) / duration,
                 static_cast<double>(tally.measured_windows) / duration);
  out += "  latency ms:";
  for (const Percentile& p : percentiles) {
    fmt::format_to(put, "  {} {:.3f}", p.name, quantile_ms(tally, p.q));
  }
  fmt::format_to(put,
                 "\n  acknowledged {} messages in {} windows (warm-up and drain included); "
                 "resubmissions {}; indeterminate {}; refused {}",
                 tally.acked_messages, tally.acked_windows, tally.resubmissions,
                 tally.indeterminate_windows, tally.refused_windows);
  if (options.rate > 0) fmt::format_to(put, "; unsent (behind the rate) {}", tally.unsent_windows);
  fmt::format_to(put, "\n  failed attempts: {}\n", errors_text(tally));
  if (!tally.fatal.empty()) out += "  stopped early: " + tally.fatal + "\n";
  return out;
}

std::string report_json(const BenchOptions& options, const Tally& tally) {
  const double duration = seconds(options.duration);
  std::string out;
  auto put = std::back_inserter(out);
  fmt::format_to(put, "{{\"mode\": \"{}\", \"rate\": {}, \"connections\": {}, \"cores\": {}, ",
                 options.rate > 0 ? "open" : "closed", options.rate, options.connections,
                 options.cores);
  fmt::format_to(put,
                 "\"window\": {}, \"message_bytes\": {}, \"identifiers\": {}, "
                 "\"distribution\": \"{}\", \"route\": \"{}\", \"seed\": {}, ",
                 options.window, options.message_bytes, options.identifiers,
                 distribution_name(options.distribution), route_name(options.route), options.seed);
  fmt::format_to(put, "\"duration_s\": {:g}, \"warmup_s\": {:g}, ", duration,
                 seconds(options.warmup));
  fmt::format_to(put,
                 "\"messages_per_s\": {:.1f}, \"windows_per_s\": {:.1f}, "
                 "\"measured_messages\": {}, \"measured_windows\": {}, ",
                 static_cast<double>(tally.measured_messages) / duration,
                 static_cast<double>(tally.measured_windows) / duration, tally.measured_messages,
                 tally.measured_windows);
  fmt::format_to(put,
                 "\"p50_ms\": {:.3f}, \"p90_ms\": {:.3f}, \"p99_ms\": {:.3f}, "
                 "\"p999_ms\": {:.3f}, \"max_ms\": {:.3f}, ",
                 quantile_ms(tally, 0.5), quantile_ms(tally, 0.9), quantile_ms(tally, 0.99),
                 quantile_ms(tally, 0.999), quantile_ms(tally, 1.0));
  fmt::format_to(put,
                 "\"acknowledged_messages\": {}, \"acknowledged_windows\": {}, "
                 "\"resubmissions\": {}, \"indeterminate_messages\": {}, "
                 "\"indeterminate_windows\": {}, \"refused_windows\": {}, "
                 "\"unsent_windows\": {}, ",
                 tally.acked_messages, tally.acked_windows, tally.resubmissions,
                 tally.indeterminate_messages, tally.indeterminate_windows, tally.refused_windows,
                 tally.unsent_windows);
  fmt::format_to(put, "\"errors\": {}, \"errors_by_kind\": {{", tally.error_count());
  bool first = true;
  for (const auto& [kind, count] : tally.errors) {
    out += first ? "" : ", ";
    http::json_quote(out, kind);
    fmt::format_to(put, ": {}", count);
    first = false;
  }
  out += "}, \"stopped_early\": ";
  if (tally.fatal.empty()) {
    out += "null";
  } else {
    http::json_quote(out, tally.fatal);
  }
  out += "}\n";
  return out;
}

std::string latency_plot(const BenchOptions& options, const Tally& tally) {
  constexpr double width = 860, height = 500;
  constexpr double left = 70, right = 30, top = 60, bottom = 60;
  const double plot_w = width - left - right;
  const double plot_h = height - top - bottom;
  // x = log10(1 / (1 - q)): 0 at the median's left edge, 2 at p99, 3 at p99.9.
  const uint64_t count = tally.latency.count();
  const double x_max =
      std::clamp(std::floor(std::log10(static_cast<double>(std::max<uint64_t>(count, 1)))), 1.0,
                 5.0);
  const double y_top = std::max(quantile_ms(tally, 1.0 - std::pow(10.0, -x_max)), 0.001);
  const double raw_step = y_top / 5;
  const double magnitude = std::pow(10.0, std::floor(std::log10(raw_step)));
  double step = magnitude;
  for (double factor : {1.0, 2.0, 5.0, 10.0}) {
    step = factor * magnitude;
    if (step >= raw_step) break;
  }
  const double y_max = std::ceil(y_top / step) * step;
  auto x_of = [&](double x) { return left + x / x_max * plot_w; };
  auto y_of = [&](double ms) { return top + plot_h - std::min(ms, y_max) / y_max * plot_h; };

  std::string out;
  auto put = std::back_inserter(out);
  fmt::format_to(put,
                 "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{0}\" height=\"{1}\" "
                 "viewBox=\"0 0 {0} {1}\" font-family=\"sans-serif\" font-size=\"12\">\n"
                 "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n",
                 width, height);
  const std::string title = setup(options);  // words and numbers: nothing XML escapes
  COWORKER_ASSERT(title.find_first_of("<>&\"") == std::string::npos);
  fmt::format_to(put,
                 "<text x=\"{}\" y=\"22\" font-size=\"14\">coworker-bench latency by percentile "
                 "({} windows measured)</text>\n<text x=\"{}\" y=\"40\" fill=\"#555\">{}</text>\n",
                 left, count, left, title);
  static constexpr std::string_view x_labels[] = {"0%",    "90%",    "99%",
                                                  "99.9%", "99.99%", "99.999%"};
  for (int x = 0; x <= static_cast<int>(x_max); x++) {
    fmt::format_to(put,
                   "<line x1=\"{0:.1f}\" y1=\"{1}\" x2=\"{0:.1f}\" y2=\"{2}\" stroke=\"#ddd\"/>\n"
                   "<text x=\"{0:.1f}\" y=\"{3}\" text-anchor=\"middle\">{4}</text>\n",
                   x_of(x), top, top + plot_h, top + plot_h + 18, x_labels[x]);
  }
  for (double ms = 0; ms <= y_max + step / 2; ms += step) {
    fmt::format_to(put,
                   "<line x1=\"{0}\" y1=\"{1:.1f}\" x2=\"{2}\" y2=\"{1:.1f}\" stroke=\"#ddd\"/>\n"
                   "<text x=\"{3}\" y=\"{4:.1f}\" text-anchor=\"end\">{5:g}</text>\n",
                   left, y_of(ms), left + plot_w, left - 6, y_of(ms) + 4, ms);
  }
  fmt::format_to(put,
                 "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">percentile</text>\n"
                 "<text transform=\"translate(18 {}) rotate(-90)\" "
                 "text-anchor=\"middle\">latency (ms)</text>\n",
                 left + plot_w / 2, height - 14, top + plot_h / 2);
  if (count > 0) {
    out += "<polyline fill=\"none\" stroke=\"#1f6fb2\" stroke-width=\"2\" points=\"";
    constexpr int steps = 250;
    for (int i = 0; i <= steps; i++) {
      const double x = x_max * i / steps;
      const double q = 1.0 - std::pow(10.0, -x);
      fmt::format_to(put, "{:.1f},{:.1f} ", x_of(x), y_of(quantile_ms(tally, q)));
    }
    out += "\"/>\n";
  }
  fmt::format_to(put, "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"none\" "
                 "stroke=\"#333\"/>\n</svg>\n",
                 left, top, plot_w, plot_h);
  return out;
}

}  // namespace coworker::bench
