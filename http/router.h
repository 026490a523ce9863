// Router: (method, path pattern) → handler, with path parameters.
//
// Built once at startup, before the cores start serving, then only read: every
// core's connections share one Router (const after setup, so no locking).
// Patterns are literal segments and `{name}` segments, which match one
// non-empty segment and hand it to the handler percent-decoded:
//
//   router.add(Method::get, "/v1/buckets/{b}/entries", read_entries,
//              RouteOptions{.body_max = 1 << 20});
//   Task<Response> read_entries(Request& request) {
//     std::string_view b = request.param("b");
//     Result<uint64_t, Response> from = request.query_uint("from", 0, UINT64_MAX);
//     if (!from) co_return from.error();
//     ...
//   }
//
// A handler is a coroutine on the connection's core; it may await cross-core
// hops and long waits. The Request lives in the connection until the
// handler's Response is written, so it may be used by reference throughout.
// Unknown paths answer 404; a path known under other methods answers 405 with
// an Allow header. The body limit is per route (DESIGN §3: 1 MiB for a single
// message, 16 MiB for a window) and is applied before the body is read.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "http/message.h"
#include "http/response.h"
#include "reactor/result.h"
#include "reactor/task.h"

namespace coworker::http {

struct Request : Message {
  // Path parameters of the matched route: pattern name → decoded value.
  std::vector<std::pair<std::string_view, std::string>> params;
  // The query string, decoded; filled by the server before the handler runs.
  std::vector<std::pair<std::string, std::string>> query_params;
  unsigned core = 0;  // the core serving this connection

  // The value of a `{name}` of the route; asking for a name the pattern does
  // not have is a bug.
  std::string_view param(std::string_view name) const;
  // The first query parameter with this name.
  std::optional<std::string_view> query_param(std::string_view name) const;
  // An unsigned decimal query parameter: absent → `fallback`; not digits,
  // overflowing or above `max` → 400 {"code": "bad_query"} naming it.
  Result<uint64_t, Response> query_uint(std::string_view name, uint64_t fallback,
                                        uint64_t max) const;
  // Decodes `query` into query_params; a bad escape → the 400 answer.
  std::optional<Response> decode_query();
};

using Handler = std::function<reactor::Task<Response>(Request&)>;

struct RouteOptions {
  uint64_t body_max = 1 << 20;
};

class Router {
 public:
  struct Route {
    Method method;
    std::string pattern;
    std::vector<std::string> segments;  // "{name}" or literal text
    Handler handler;
    RouteOptions options;
  };
  // The outcome of a lookup: a route, or the error answer (404, 405, 400).
  struct Match {
    const Route* route = nullptr;
    std::optional<Response> error;
  };

  // Adding a (method, pattern) twice is a bug.
  void add(Method method, std::string_view pattern, Handler handler, RouteOptions options = {});
  // Finds the route for request.method and request.path and fills
  // request.params.
  Match match(Request& request) const;
  size_t size() const { return _routes.size(); }

 private:
  static bool segments_match(const Route& route, const std::vector<std::string_view>& path);

  std::vector<Route> _routes;
};

}  // namespace coworker::http
