// Connection: one accepted HTTP/1.1 connection on one core — read, parse,
// route, run the handler, write the answer, in order, until close.
//
// Created and owned by Server::run_connection (its coroutine frame) on the
// core that accepted it; it ends with the connection. Requests are answered
// strictly in order: the next pipelined request is parsed only after the
// previous answer is queued, and answers to requests already in the input
// are batched into one send (flushed before waiting for more input, or at
// output_flush_bytes). One send is in flight at a time.
//
// Input comes either from a MultishotRecv on the server's BufferRing (a
// buffer is recycled as soon as the parser has consumed it; at most one
// partly consumed buffer is held while a handler runs) or from a plain Recv
// into the connection's own buffer.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "http/parser.h"
#include "http/router.h"
#include "reactor/multishot.h"
#include "reactor/task.h"

namespace coworker::http {

class Server;

class Connection {
 public:
  using Clock = std::chrono::steady_clock;

  Connection(Server& server, int fd);
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;
  ~Connection();

  reactor::Task<void> run();

  // Sweeper side: past its deadline → shut the socket down (ends I/O).
  void check_deadline(Clock::time_point now);
  Connection* next = nullptr;  // Server's intrusive list
  Connection* prev = nullptr;

 private:
  // Outcome of an input wait: bytes in _pending, or the connection is over.
  reactor::Task<bool> fill();
  void consumed(size_t used);
  reactor::Task<bool> flush();
  reactor::Task<bool> answer(Response& response);
  reactor::Task<bool> answer_stream(Response& response);
  reactor::Task<bool> handle(const Router::Route* route, std::optional<Response> error);

  Server& _server;
  int _fd;
  Parser _parser;
  Request _request;
  std::string _out;
  std::optional<reactor::MultishotRecv> _recv;
  std::optional<reactor::MultishotRecv::Chunk> _chunk;  // buffer _pending points into
  std::vector<char> _buffer;                            // single-shot mode
  std::string_view _pending;                            // unparsed input
  Clock::time_point _deadline = Clock::time_point::max();
  bool _timed_out = false;
};

}  // namespace coworker::http
