#include "tools/bench/router.h"

#include <simdjson.h>

#include <map>

#include "consensus/assert.h"

namespace coworker::bench {
namespace {

http::ClientConfig view_client_config() {
  http::ClientConfig config;
  config.connect_timeout = std::chrono::milliseconds{1000};
  config.request_timeout = std::chrono::milliseconds{2000};
  return config;
}

}  // namespace

Router::Router(const BenchOptions& options) : _options(options) {
  COWORKER_ASSERT(!options.servers.empty());
  for (const cli::Address& server : options.servers) {
    const size_t index = address_index(server.to_string());
    COWORKER_ASSERT(index == _view_clients.size());
    _view_clients.push_back(std::make_unique<http::Client>(_endpoints[index], view_client_config()));
  }
}

size_t Router::address_index(std::string_view host_port) {
  for (size_t i = 0; i < _names.size(); i++) {
    if (_names[i] == host_port) return i;
  }
  Result<reactor::Endpoint, std::string> endpoint = reactor::Endpoint::parse(host_port);
  if (!endpoint) return SIZE_MAX;
  _endpoints.push_back(*endpoint);
  _names.emplace_back(host_port);
  return _names.size() - 1;
}

size_t Router::next_server() {
  const size_t index = _next_server;
  _next_server = (_next_server + 1) % _options.servers.size();
  return index;
}

size_t Router::target(uint32_t bucket) {
  COWORKER_ASSERT(bucket < _leader.size());
  if (_options.route == Route::leader && _leader[bucket]) return *_leader[bucket];
  return next_server();
}

std::string Router::apply(std::string_view json) {
  simdjson::dom::parser parser;
  simdjson::dom::object view;
  uint64_t buckets = 0;
  simdjson::dom::array members;
  simdjson::dom::array bucket_views;
  if (parser.parse(json.data(), json.size()).get_object().get(view) ||
      view["buckets_total"].get_uint64().get(buckets) ||
      view["members"].get_array().get(members) || view["buckets"].get_array().get(bucket_views)) {
    return "/v1/cluster answered without buckets_total, members and buckets";
  }
  if (buckets == 0 || (buckets & (buckets - 1)) != 0 || buckets > 65536) {
    return "/v1/cluster names " + std::to_string(buckets) + " buckets, not a power of two";
  }
  if (_buckets != 0 && buckets != _buckets) return "the cluster's bucket count changed";
  std::map<uint64_t, size_t> address_of;  // member id → address index
  for (simdjson::dom::element member : members) {
    uint64_t id = 0;
    std::string_view http;
    if (member["id"].get_uint64().get(id) || member["http"].get_string().get(http)) continue;
    const size_t index = address_index(http);
    if (index != SIZE_MAX) address_of[id] = index;
  }
  _buckets = static_cast<uint32_t>(buckets);
  _leader.assign(_buckets, std::nullopt);
  for (simdjson::dom::element bucket_view : bucket_views) {
    uint64_t bucket = 0;
    uint64_t leader = 0;
    if (bucket_view["bucket"].get_uint64().get(bucket) || bucket >= _buckets) continue;
    if (bucket_view["leader"].get_uint64().get(leader)) continue;  // null: none
    auto at = address_of.find(leader);
    if (at != address_of.end()) _leader[bucket] = at->second;
  }
  return {};
}

reactor::Task<std::string> Router::refresh() {
  _refreshing = true;
  std::string why;
  for (size_t attempt = 0; attempt < _view_clients.size(); attempt++) {
    const size_t server = next_server();
    http::Client& client = *_view_clients[server];
    auto asking = client.request(http::Method::get, "/v1/cluster");
    Result<http::Message> reply = co_await asking;
    if (!reply) {
      why = _names[server] + ": " + reply.error().message();
      continue;
    }
    if (reply->status != 200) {
      why = _names[server] + ": /v1/cluster answered " + std::to_string(reply->status);
      continue;
    }
    why = apply(reply->body);
    if (why.empty()) break;
    why = _names[server] + ": " + why;
  }
  _stale = !why.empty();
  _refreshed = Clock::now();
  _refreshing = false;
  co_return why;
}

reactor::Task<void> Router::maybe_refresh() {
  if (!_stale || _refreshing || Clock::now() - _refreshed < refresh_gap) co_return;
  auto refreshing = refresh();
  std::string why = co_await refreshing;
  (void)why;  // the requests keep going to what is known; the next failure retries
}

reactor::Task<void> Router::close() {
  for (std::unique_ptr<http::Client>& client : _view_clients) {
    auto closing = client->close();
    co_await closing;
  }
}

}  // namespace coworker::bench
