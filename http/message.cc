#include "http/message.h"

#include <array>

namespace coworker::http {

namespace {

constexpr std::array<std::string_view, method_count> method_names = {
    "GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH", "OTHER"};

constexpr size_t body_keep_max = 64 << 10;

char lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + ('a' - 'A')) : c; }

}  // namespace

Method method_from(std::string_view text) {
  for (size_t i = 0; i + 1 < method_count; i++) {
    if (text == method_names[i]) return static_cast<Method>(i);
  }
  return Method::other;
}

std::string_view method_name(Method method) { return method_names[static_cast<size_t>(method)]; }

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); i++) {
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

std::optional<std::string_view> Message::header(std::string_view name) const {
  for (const Header& h : headers) {
    if (iequals(h.name, name)) return h.value;
  }
  return std::nullopt;
}

void Message::clear() {
  method = Method::other;
  method_text = target = path = query = reason = {};
  status = 0;
  version_minor = 1;
  headers.clear();
  // A connection keeps its buffers between requests, but not a big body's.
  if (body.capacity() > body_keep_max) {
    body = std::string();
  } else {
    body.clear();
  }
  keep_alive = true;
  expect_continue = false;
  chunked = false;
  content_length.reset();
  head.clear();
}

}  // namespace coworker::http
