// Router: where coworker-bench sends a bucket's requests, on one core.
//
// It keeps the participants' client addresses (the --server ones first, then
// every member /v1/cluster names) and, per bucket, the index of its leader's
// address. With --route leader a request goes to its bucket's leader, as a
// smart client does; when the leader is unknown, or with --route spread, it
// goes to the --server addresses in turn and the participant hops it
// (DESIGN §3). A failed attempt marks the view stale; the next
// maybe_refresh() then asks /v1/cluster again (one refresh at a time, at most
// one per refresh_gap), while requests keep flowing on what is known.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "http/client.h"
#include "reactor/net.h"
#include "reactor/task.h"
#include "tools/bench/options.h"

namespace coworker::bench {

class Router {
 public:
  explicit Router(const BenchOptions& options);
  Router(const Router&) = delete;
  Router& operator=(const Router&) = delete;

  // Asks the --server addresses in turn for /v1/cluster; empty when one
  // answered, else why none did.
  reactor::Task<std::string> refresh();
  // refresh() when the view is stale and no refresh ran lately.
  reactor::Task<void> maybe_refresh();
  void mark_stale() { _stale = true; }

  uint32_t buckets() const { return _buckets; }
  // The address index a request for `bucket` goes to now.
  size_t target(uint32_t bucket);
  // The next --server address in turn.
  size_t target_spread() { return next_server(); }

  size_t addresses() const { return _endpoints.size(); }
  const reactor::Endpoint& endpoint(size_t index) const { return _endpoints[index]; }

  reactor::Task<void> close();

 private:
  using Clock = std::chrono::steady_clock;
  static constexpr std::chrono::milliseconds refresh_gap{100};

  std::string apply(std::string_view json);
  size_t address_index(std::string_view host_port);
  size_t next_server();

  const BenchOptions& _options;
  std::vector<reactor::Endpoint> _endpoints;
  std::vector<std::string> _names;
  std::vector<std::unique_ptr<http::Client>> _view_clients;  // one per --server
  uint32_t _buckets = 0;
  std::vector<std::optional<size_t>> _leader;  // per bucket: an address index
  size_t _next_server = 0;
  bool _stale = false;
  bool _refreshing = false;
  Clock::time_point _refreshed{};
};

}  // namespace coworker::bench
