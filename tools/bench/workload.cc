#include "tools/bench/workload.h"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "consensus/assert.h"
#include "http/json.h"
#include "tools/cli/text.h"

namespace coworker::bench {

Identifiers::Identifiers(const BenchOptions& options) {
  COWORKER_ASSERT(options.identifiers > 0);
  _all.reserve(options.identifiers);
  for (uint64_t i = 0; i < options.identifiers; i++) {
    Identifier& identifier = _all.emplace_back();
    identifier.name = options.prefix + std::to_string(i);
    identifier.path = "/v1/log/";
    cli_client::percent_encode(identifier.path, identifier.name);
  }
  if (options.distribution == Distribution::zipf) {
    // Rank i + 1 weighs 1 / (i + 1)^s; identifier 0 is the hottest.
    _cumulative.resize(options.identifiers);
    double sum = 0;
    for (uint64_t i = 0; i < options.identifiers; i++) {
      sum += 1.0 / std::pow(static_cast<double>(i + 1), options.zipf_exponent);
      _cumulative[i] = sum;
    }
    for (double& c : _cumulative) c /= sum;
    _cumulative.back() = 1.0;
  }
}

Picker::Picker(const Identifiers& identifiers, uint64_t seed)
    : _identifiers(identifiers), _prng(seed) {}

const Identifier& Picker::next() {
  const std::vector<double>& cumulative = _identifiers.cumulative();
  if (cumulative.empty()) return _identifiers[_prng.below(_identifiers.size())];
  // A uniform double in [0, 1) from the top 53 bits.
  const double u = static_cast<double>(_prng.next() >> 11) * 0x1.0p-53;
  const auto at = std::upper_bound(cumulative.begin(), cumulative.end(), u);
  const size_t i = std::min(static_cast<size_t>(at - cumulative.begin()), _identifiers.size() - 1);
  return _identifiers[i];
}

std::string message_body(uint64_t bytes, uint64_t seed) {
  consensus::Prng prng(seed);
  std::string body(bytes, 'a');
  for (char& c : body) c = static_cast<char>('a' + prng.below(26));
  return body;
}

void build_request(Request& request, const Identifier& identifier, std::string_view connection,
                   uint64_t first_series, uint64_t count, std::string_view body) {
  COWORKER_ASSERT(count > 0);
  request.method = http::Method::post;
  request.headers.clear();
  request.body.clear();
  auto headers = std::back_inserter(request.headers);
  fmt::format_to(headers, "Coworker-Connection: {}\r\n", connection);
  if (count == 1) {
    request.target = identifier.path;
    fmt::format_to(headers, "Coworker-Series: {}\r\n", first_series);
    request.body.append(body);
    return;
  }
  request.target = "/v1/append";
  std::string& out = request.body;
  out += "{\"messages\":[";
  for (uint64_t i = 0; i < count; i++) {
    out += i == 0 ? "{\"identifier\":" : ",{\"identifier\":";
    http::json_quote(out, identifier.name);
    fmt::format_to(std::back_inserter(out), ",\"series\":{},\"body\":", first_series + i);
    http::json_quote(out, body);
    out += '}';
  }
  out += "]}";
}

}  // namespace coworker::bench
