// What coworker-bench sends: the identifiers (prefix + i, i < N), the draw of
// one per window (uniform or zipf, from the in-repo PRNG so a --seed repeats
// the same sequence), and the bytes of each request.
//
// A window's messages all take the identifier drawn for it: a producer
// batching one key's messages, sent whole to that key's bucket leader. With
// --window 1 a message is a single append, POST /v1/log/{identifier} with the
// Coworker-Connection and Coworker-Series headers; otherwise a window,
// POST /v1/append. Either way the series are real (DESIGN §3): strictly
// increasing per connection, and a resubmission sends the same bytes.
//
// Identifiers are built once (shared read-only by every core); each core has
// its own Picker.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "consensus/prng.h"
#include "http/message.h"
#include "tools/bench/options.h"

namespace coworker::bench {

struct Identifier {
  std::string name;
  std::string path;  // the request target of a single append: /v1/log/<percent-encoded>
};

class Identifiers {
 public:
  explicit Identifiers(const BenchOptions& options);

  size_t size() const { return _all.size(); }
  const Identifier& operator[](size_t i) const { return _all[i]; }
  // For zipf: the cumulative weight of identifiers 0..i, the last one 1.
  const std::vector<double>& cumulative() const { return _cumulative; }

 private:
  std::vector<Identifier> _all;
  std::vector<double> _cumulative;  // empty for uniform
};

// Draws identifiers for one core.
class Picker {
 public:
  Picker(const Identifiers& identifiers, uint64_t seed);
  const Identifier& next();

 private:
  const Identifiers& _identifiers;
  consensus::Prng _prng;
};

// One request, built once per window and sent unchanged on every attempt.
struct Request {
  http::Method method = http::Method::post;
  std::string target;
  std::string headers;
  std::string body;
};

// The message body every message carries: `bytes` printable ASCII letters.
std::string message_body(uint64_t bytes, uint64_t seed);

// Fills `request` (reusing its capacity) for a window of `count` messages of
// `identifier`, series first_series.., on `connection`.
void build_request(Request& request, const Identifier& identifier, std::string_view connection,
                   uint64_t first_series, uint64_t count, std::string_view body);

}  // namespace coworker::bench
