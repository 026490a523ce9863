#include "http/router.h"

#include <charconv>

#include <fmt/format.h>

#include "http/url.h"

namespace coworker::http {

namespace {

bool is_param(std::string_view segment) {
  return segment.size() >= 3 && segment.front() == '{' && segment.back() == '}';
}

// "/a/b/" → {"a", "b", ""}; "/" → {""}.
void split_path(std::string_view path, std::vector<std::string_view>* out) {
  out->clear();
  COWORKER_ASSERT(!path.empty() && path.front() == '/');
  path.remove_prefix(1);
  for (;;) {
    const size_t slash = path.find('/');
    out->push_back(path.substr(0, slash));
    if (slash == std::string_view::npos) break;
    path.remove_prefix(slash + 1);
  }
}

}  // namespace

std::string_view Request::param(std::string_view name) const {
  for (const auto& [key, value] : params) {
    if (key == name) return value;
  }
  COWORKER_ASSERT(false && "no such path parameter in the route");
  return {};
}

std::optional<std::string_view> Request::query_param(std::string_view name) const {
  for (const auto& [key, value] : query_params) {
    if (key == name) return std::string_view(value);
  }
  return std::nullopt;
}

Result<uint64_t, Response> Request::query_uint(std::string_view name, uint64_t fallback,
                                               uint64_t max) const {
  const std::optional<std::string_view> text = query_param(name);
  if (!text) return fallback;
  uint64_t value = 0;
  const char* end = text->data() + text->size();
  auto [stop, ec] = std::from_chars(text->data(), end, value);
  if (text->empty() || ec != std::errc{} || stop != end) {
    return Response::error(400, "bad_query",
                           fmt::format("query parameter '{}' is not an unsigned integer", name));
  }
  if (value > max) {
    return Response::error(400, "bad_query",
                           fmt::format("query parameter '{}' is above {}", name, max));
  }
  return value;
}

std::optional<Response> Request::decode_query() {
  query_params.clear();
  if (query.empty() || parse_query(query, &query_params)) return std::nullopt;
  return Response::error(400, "bad_query", "the query string has a bad percent-escape");
}

void Router::add(Method method, std::string_view pattern, Handler handler, RouteOptions options) {
  COWORKER_ASSERT(!pattern.empty() && pattern.front() == '/');
  COWORKER_ASSERT(handler != nullptr);
  for (const Route& route : _routes) {
    COWORKER_ASSERT(!(route.method == method && route.pattern == pattern));
  }
  Route route{method, std::string(pattern), {}, std::move(handler), options};
  std::vector<std::string_view> parts;
  split_path(pattern, &parts);
  for (std::string_view part : parts) route.segments.emplace_back(part);
  _routes.push_back(std::move(route));
}

bool Router::segments_match(const Route& route, const std::vector<std::string_view>& path) {
  if (route.segments.size() != path.size()) return false;
  for (size_t i = 0; i < path.size(); i++) {
    const std::string& segment = route.segments[i];
    if (is_param(segment) ? path[i].empty() : segment != path[i]) return false;
  }
  return true;
}

Router::Match Router::match(Request& request) const {
  request.params.clear();
  Match match;
  if (request.path.empty() || request.path.front() != '/') {
    match.error = Response::error(404, "not_found", "no such route");
    return match;
  }
  thread_local std::vector<std::string_view> path;
  split_path(request.path, &path);
  std::string allowed;
  for (const Route& route : _routes) {
    if (!segments_match(route, path)) continue;
    // HEAD is served by the GET route (the server leaves the body out).
    const bool head_as_get = request.method == Method::head && route.method == Method::get;
    if (route.method != request.method && !head_as_get) {
      allowed += allowed.empty() ? "" : ", ";
      allowed += method_name(route.method);
      continue;
    }
    for (size_t i = 0; i < path.size(); i++) {
      const std::string& segment = route.segments[i];
      if (!is_param(segment)) continue;
      std::string value;
      if (!percent_decode(path[i], &value, PlusIsSpace::no)) {
        match.error = Response::error(400, "bad_path", "a path segment has a bad percent-escape");
        return match;
      }
      request.params.emplace_back(std::string_view(segment).substr(1, segment.size() - 2),
                                  std::move(value));
    }
    match.route = &route;
    return match;
  }
  if (allowed.empty()) {
    match.error = Response::error(404, "not_found", "no such route");
  } else {
    match.error = Response::error(405, "method_not_allowed",
                                  fmt::format("this path answers {} only", allowed));
    match.error->header("Allow", allowed);
  }
  return match;
}

}  // namespace coworker::http
