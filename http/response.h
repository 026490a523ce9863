// Response: what a route handler returns, and the writer that turns it into
// HTTP/1.1 bytes with fmt.
//
// Built by a handler on the connection's core and owned by the connection
// until written. A sized body (`body`) is the common case; a handler that
// streams sets `stream`, a coroutine the connection awaits for each chunk
// until it yields nothing, sent as Transfer-Encoding: chunked (or, to an
// HTTP/1.0 client, raw until the connection closes).
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "http/message.h"
#include "reactor/task.h"

namespace coworker::http {

struct Response {
  // Returns the next chunk of a streamed body; nullopt ends it.
  using Stream = std::function<reactor::Task<std::optional<std::string>>()>;

  int status = 200;
  std::string_view content_type = "application/json";  // static text
  std::string headers;  // extra header lines, "Name: value\r\n" each
  std::string body;
  Stream stream;
  bool close = false;  // answer with Connection: close and close after

  static Response json(int status, std::string body);
  static Response text(int status, std::string body);
  // {"error": words, "code": code}: the one error shape of DESIGN §3.
  static Response error(int status, std::string_view code, std::string_view words);
  static Response error(const Error& error) {
    return Response::error(error.status, error.code, error.words);
  }

  // Adds a header line; a name or value with CR, LF or NUL is a bug.
  Response& header(std::string_view name, std::string_view value);
};

std::string_view reason_phrase(int status);

enum class Framing : uint8_t { sized, chunked, until_close };

// Appends the status line and headers of `response` (with Content-Length for
// sized framing) for a request of HTTP/1.<minor>.
void write_head(std::string& out, const Response& response, int version_minor, bool keep_alive,
                Framing framing);
// Appends one chunk's framing (size line, data, CRLF) / the last chunk.
void write_chunk(std::string& out, std::string_view data);
void write_last_chunk(std::string& out);

}  // namespace coworker::http
