// HTTP/1.1 messages as the parser leaves them: a request or a response head,
// its headers and its body, plus the error a malformed message is answered
// with.
//
// Pure data, no I/O; any core. A Message owns the bytes of its start line and
// headers (`head`) and every string_view in it points there: moving a Message
// keeps them valid (a vector's buffer moves with it), copying is forbidden.
// A server connection keeps one Request for its whole life and the parser
// refills it for each request, so steady state does not allocate.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace coworker::http {

enum class Method : uint8_t { get, head, post, put, delete_, options, patch, other };
constexpr size_t method_count = 8;

Method method_from(std::string_view text);
std::string_view method_name(Method method);

// ASCII case-insensitive equality (header names, tokens).
bool iequals(std::string_view a, std::string_view b);

struct Header {
  std::string_view name;
  std::string_view value;
};

// Why a message was refused: the status to answer with, a stable machine
// word (the JSON `code`) and the words (the JSON `error`). Both strings are
// static. Any parse error ends the connection: framing is lost.
struct Error {
  int status = 0;
  std::string_view code;
  std::string_view words;
};

struct Message {
  Message() = default;
  Message(Message&&) = default;
  Message& operator=(Message&&) = default;
  Message(const Message&) = delete;
  Message& operator=(const Message&) = delete;

  // Request line (requests only).
  Method method = Method::other;
  std::string_view method_text;
  std::string_view target;  // as sent: path and query
  std::string_view path;    // target up to '?', still percent-encoded
  std::string_view query;   // after '?', without it; empty when none
  // Status line (responses only).
  int status = 0;
  std::string_view reason;

  int version_minor = 1;  // HTTP/1.<minor>
  std::vector<Header> headers;
  std::string body;
  bool keep_alive = true;        // no "Connection: close", and 1.1 or keep-alive
  bool expect_continue = false;  // "Expect: 100-continue" on a 1.1 request
  bool chunked = false;
  std::optional<uint64_t> content_length;

  // Storage of the start line and header bytes the views above point into.
  std::vector<char> head;

  // First header with this name (case-insensitive).
  std::optional<std::string_view> header(std::string_view name) const;
  // Forget the message but keep the capacity of its buffers.
  void clear();
};

}  // namespace coworker::http
