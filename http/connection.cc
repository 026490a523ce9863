#include "http/connection.h"

#include <sys/socket.h>

#include "http/server.h"
#include "reactor/ops.h"

namespace coworker::http {

using reactor::Loop;
using Step = Parser::Step;

namespace {
constexpr size_t output_keep_max = 1 << 20;  // a bigger output buffer is freed after use
constexpr size_t body_iov_min = 16 << 10;    // bigger bodies go out without a copy
constexpr size_t linger_bytes_max = 1 << 20;
constexpr std::string_view continue_line = "HTTP/1.1 100 Continue\r\n\r\n";
}  // namespace

Connection::Connection(Server& server, int fd)
    : _server(server), _fd(fd), _parser(Parser::Kind::request, server.config().limits) {
  if (server.buffers() != nullptr) {
    _recv.emplace(fd, server.buffers());
  } else {
    _buffer.resize(server.config().buffer_size);
  }
  _request.core = Loop::current().core();
}

Connection::~Connection() {
  COWORKER_ASSERT(!_chunk.has_value());
  COWORKER_ASSERT(!_recv.has_value() || !_recv->armed());
}

void Connection::check_deadline(Clock::time_point now) {
  if (_timed_out || now < _deadline) return;
  _timed_out = true;
  _server._stats.connections_timed_out++;
  // Ends the pending recv (0 bytes) or send (EPIPE); run() then closes.
  ::shutdown(_fd, SHUT_RDWR);
}

reactor::Task<bool> Connection::fill() {
  COWORKER_ASSERT(_pending.empty());
  // Answers to the requests already read go out before we wait for more.
  if (!_out.empty() && !co_await flush()) co_return false;
  if (_parser.idle()) _deadline = Clock::now() + _server._config.idle_timeout;
  if (_recv) {
    Result<reactor::MultishotRecv::Chunk> chunk = co_await _recv->next();
    if (!chunk || chunk->length == 0) co_return false;
    _chunk = *chunk;
    std::span<const char> bytes = _recv->data(*chunk);
    _pending = std::string_view(bytes.data(), bytes.size());
  } else {
    Result<size_t> n = co_await reactor::Recv{_fd, _buffer};
    if (!n || *n == 0) co_return false;
    _pending = std::string_view(_buffer.data(), *n);
  }
  // The first bytes of a request start its clock (slowloris bound).
  if (_parser.idle()) _deadline = Clock::now() + _server._config.request_timeout;
  co_return true;
}

void Connection::consumed(size_t used) {
  _pending.remove_prefix(used);
  if (_pending.empty() && _chunk) {
    _recv->recycle(*_chunk);  // as soon as the parser is done with it
    _chunk.reset();
  }
}

reactor::Task<bool> Connection::flush() {
  if (_out.empty()) co_return true;
  const Clock::time_point saved = _deadline;
  _deadline = Clock::now() + _server._config.request_timeout;  // a client that does not read
  Result<size_t> sent = co_await reactor::Send{_fd, _out};
  _deadline = saved;
  _out.clear();
  if (_out.capacity() > output_keep_max) _out = std::string();
  co_return sent.ok();
}

reactor::Task<bool> Connection::answer(Response& response) {
  if (_server._config.answered) _server._config.answered(response);
  if (response.stream) co_return co_await answer_stream(response);
  const bool keep = _request.keep_alive && !response.close && !Loop::current().stopping();
  write_head(_out, response, _request.version_minor, keep, Framing::sized);
  if (_request.method != Method::head) {
    if (response.body.size() >= body_iov_min) {
      // Large answers: head and body in one sendmsg, the body not copied.
      const Clock::time_point saved = _deadline;
      _deadline = Clock::now() + _server._config.request_timeout;
      iovec iov[2] = {{_out.data(), _out.size()}, {response.body.data(), response.body.size()}};
      Result<size_t> sent = co_await reactor::SendMsg{_fd, iov};
      _deadline = saved;
      _out.clear();
      if (!sent) co_return false;
    } else {
      _out += response.body;
    }
  }
  if (!keep) {
    (void)co_await flush();
    co_return false;
  }
  if (_out.size() >= _server._config.output_flush_bytes) co_return co_await flush();
  co_return true;
}

reactor::Task<bool> Connection::answer_stream(Response& response) {
  // HTTP/1.0 has no chunked coding: the body then runs until the close.
  const bool chunked = _request.version_minor == 1;
  const bool keep = chunked && _request.keep_alive && !response.close;
  write_head(_out, response, _request.version_minor, keep,
             chunked ? Framing::chunked : Framing::until_close);
  const bool head = _request.method == Method::head;
  while (!head) {
    if (!co_await flush()) co_return false;
    std::optional<std::string> piece = co_await response.stream();
    if (!piece) break;
    if (chunked) {
      write_chunk(_out, *piece);
    } else {
      _out += *piece;
    }
  }
  if (chunked && !head) write_last_chunk(_out);
  if (!co_await flush()) co_return false;
  co_return keep;
}

reactor::Task<bool> Connection::handle(const Router::Route* route, std::optional<Response> error) {
  _server._stats.requests++;
  if (!error && route != nullptr) error = _request.decode_query();
  if (error) co_return co_await answer(*error);
  _deadline = Clock::time_point::max();  // a handler may wait (long-poll) as long as it needs
  Response response = co_await route->handler(_request);
  co_return co_await answer(response);
}

reactor::Task<void> Connection::run() {
  const ServerConfig& config = _server._config;
  _parser.start(&_request);
  const Router::Route* route = nullptr;
  std::optional<Response> route_error;
  bool framing_lost = false;
  for (;;) {
    if (_pending.empty() && !co_await fill()) break;
    size_t used = 0;
    Step step = _parser.feed(_pending, &used);
    consumed(used);
    if (step == Step::more) continue;
    if (step == Step::head) {
      Router::Match match = _server._router.match(_request);
      route = match.route;
      route_error = std::move(match.error);
      step = _parser.after_head(route != nullptr ? route->options.body_max : config.limits.body_max);
      if (step == Step::more) {
        if (_request.expect_continue && _pending.empty()) {
          _out += continue_line;
          if (!co_await flush()) break;
        }
        continue;
      }
    }
    if (step == Step::error) {
      _server._stats.parse_errors++;
      Response response = Response::error(_parser.error());
      response.close = true;
      (void)co_await answer(response);
      framing_lost = true;
      break;
    }
    COWORKER_ASSERT(step == Step::done);
    if (!co_await handle(route, std::move(route_error))) break;
    route = nullptr;
    route_error.reset();
    _parser.start(&_request);
    // A pipelined request already buffered gets its own clock.
    if (!_pending.empty()) _deadline = Clock::now() + config.request_timeout;
  }
  if (framing_lost && !_timed_out) {
    // Lingering close: stop sending, read (and drop) what the client is
    // still sending for a while, so our error answer is not lost to a reset.
    ::shutdown(_fd, SHUT_WR);
    _deadline = Clock::now() + config.request_timeout;
    size_t dropped = _pending.size();
    consumed(_pending.size());
    while (dropped < linger_bytes_max && co_await fill()) {
      dropped += _pending.size();
      consumed(_pending.size());
    }
  }
  if (_chunk) {
    _recv->recycle(*_chunk);
    _chunk.reset();
  }
  if (_recv) co_await _recv->close();
  (void)co_await reactor::Close{_fd};
}

}  // namespace coworker::http
