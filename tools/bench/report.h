// coworker-bench's report: a few readable lines, or one JSON object with the
// fields of DESIGN §8 (messages_per_s, p50_ms, p99_ms, errors, …), and an SVG
// plot of latency by percentile.
#pragma once

#include <string>

#include "tools/bench/options.h"
#include "tools/bench/tally.h"

namespace coworker::bench {

std::string report_text(const BenchOptions& options, const Tally& tally);
std::string report_json(const BenchOptions& options, const Tally& tally);
// A self-contained SVG: latency (ms) against percentile on the usual
// log scale of 1 / (1 - q), from 0 % to the highest percentile the sample
// count supports.
std::string latency_plot(const BenchOptions& options, const Tally& tally);

}  // namespace coworker::bench
