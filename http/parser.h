// Parser: incremental HTTP/1.1 message parser, for requests (the server) and
// responses (the client). Pure: bytes in, a Message and steps out; no I/O, no
// clock, no allocation beyond the Message's own buffers.
//
// Owned by one connection on one core for the connection's life. Input may be
// cut anywhere: the parser never needs a whole request in one buffer. The
// start line and headers are copied into Message::head (bounded by the
// limits); body bytes are copied once, from the caller's buffer into
// Message::body (de-chunked), which is reserved up front for a known length
// plus simdjson's padding so a JSON body parses in place.
//
// Use, per message:
//   parser.start(&message);
//   feed(...) until Step::head      — start line and headers complete
//   after_head(body_max)            — the route decides the body limit; 413 here
//   feed(...) until Step::done      — body complete (after_head may say done)
// Step::error at any point: error() says what to answer; the connection must
// close since framing is lost. feed() stops at the end of a message, so the
// caller keeps the rest of its buffer for the next (pipelined) message.
//
// Strictness (request smuggling and header injection are refused, not
// repaired): lines end in CRLF; a bare CR or another control byte in a line is
// an error; no whitespace before a header's colon, no folded lines; one
// Content-Length at most, digits only, never together with chunked; chunk
// sizes are hex without overflow.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <utility>
#include <vector>

#include "http/message.h"

namespace coworker::http {

struct Limits {
  size_t request_line_max = 8 << 10;   // 414 beyond (DESIGN §3)
  size_t header_bytes_max = 16 << 10;  // 431 beyond
  size_t header_count_max = 128;       // 431 beyond
  uint64_t body_max = 1 << 20;         // 413 beyond; per route (after_head)
};

// Bytes of zeroes kept after a body for simdjson (SIMDJSON_PADDING).
constexpr size_t body_padding = 64;

class Parser {
 public:
  enum class Kind : uint8_t { request, response };
  enum class Step : uint8_t { more, head, done, error };

  Parser(Kind kind, Limits limits) : _kind(kind), _limits(limits) {}

  // Begins a new message into *out (cleared; its capacity is kept).
  void start(Message* out);
  // Consumes a prefix of `input` (*consumed says how much) and reports the
  // first event reached: head, done or error; `more` when all was consumed.
  Step feed(std::string_view input, size_t* consumed);
  // After Step::head: decides the body's framing under `body_max`. Returns
  // done (no body), more (feed the body) or error (413, or 400 for framing).
  Step after_head(uint64_t body_max);
  // Responses only, before after_head: this answer has no body whatever its
  // headers say (the request was HEAD).
  void no_body() { _no_body = true; }
  // Responses only: the peer closed. A body delimited by the close is done;
  // anything else unfinished is an error.
  Step eof();

  const Error& error() const { return _error; }
  bool idle() const { return _state == State::start_line && _line_bytes == 0; }
  bool in_body() const { return _state >= State::body_length && _state < State::done; }

 private:
  enum class State : uint8_t {
    start_line,
    header_line,
    head_complete,
    body_length,
    body_eof,
    chunk_size,
    chunk_data,
    chunk_data_end,
    trailer_line,
    done,
    failed,
  };
  struct Span {
    uint32_t offset = 0;
    uint32_t length = 0;
  };

  Step fail(const Error& error);
  Step feed_line(std::string_view input, size_t* consumed);
  Step on_line(Span line);
  Step on_request_line(std::string_view line);
  Step on_status_line(std::string_view line);
  Step on_header_line(Span line);
  Step on_head_complete();
  Step on_body_line(std::string_view text);
  Step on_chunk_size_line(std::string_view line);
  Step on_trailer_line(std::string_view line);
  Step feed_body(std::string_view input, size_t* consumed);
  Step framing_headers();
  std::string_view view(Span s) const {
    return std::string_view(_out->head.data() + s.offset, s.length);
  }

  Kind _kind;
  Limits _limits;
  Message* _out = nullptr;
  State _state = State::start_line;
  Error _error;
  bool _no_body = false;
  size_t _line_start = 0;     // offset in head (or _line) of the line being read
  size_t _line_bytes = 0;     // bytes of the current line so far
  size_t _header_bytes = 0;   // bytes of header lines so far
  size_t _empty_lines = 0;    // CRLFs before a request line (tolerated, bounded)
  uint64_t _remaining = 0;    // body or chunk bytes still to read
  uint64_t _body_max = 0;
  std::string _line;          // chunk-size and trailer lines (not kept)
  std::vector<std::pair<Span, Span>> _spans;  // headers, as offsets into head
  Span _method, _target, _reason;
};

}  // namespace coworker::http
