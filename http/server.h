// Server: one core's HTTP/1.1 service — its listener, its connections, its
// timeouts — serving a shared, read-only Router.
//
// One Server per core, created by that core's main task and living until the
// core stops (serve() returns once every connection has ended). Each core
// owns a SO_REUSEPORT listener on the same port (listen_per_core), so the
// kernel spreads connections across cores and a connection never leaves the
// core that accepted it (DESIGN §6).
//
// Per core:
//   - a MultishotAccept on the listener (falls back to single-shot accept);
//   - one BufferRing for multishot recv when the ring supports it and the
//     config asks for it (RecvMode), else each connection recvs into its own
//     buffer;
//   - a sweeper task that, every `tick`, shuts down connections past their
//     deadline: idle keep-alive (idle_timeout), a request not complete within
//     request_timeout of its first byte (slowloris), a response the client
//     does not read within request_timeout. shutdown() ends the pending recv
//     or send, and the connection closes itself. No timer per recv.
//   - at most `connections_max` open connections: beyond it, a new connection
//     gets a 503 {"code": "too_many_connections"} and is closed at once.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <vector>

#include "http/parser.h"
#include "http/router.h"
#include "reactor/buffer_ring.h"
#include "reactor/net.h"
#include "reactor/ops.h"
#include "reactor/sync.h"
#include "reactor/task.h"

namespace coworker::http {

class Connection;

enum class RecvMode : uint8_t { single, multishot };

struct ServerConfig {
  Limits limits;  // body_max here applies to unknown routes (404/405 bodies)
  reactor::Milliseconds idle_timeout{60000};
  reactor::Milliseconds request_timeout{10000};
  reactor::Milliseconds tick{250};
  size_t connections_max = 16384;
  RecvMode recv_mode = RecvMode::multishot;  // measured: bench/http_recv_modes.sh
  uint16_t buffer_count = 1024;  // multishot: provided buffers per core
  uint32_t buffer_size = 4096;   // multishot: bytes per provided buffer; single: per connection
  size_t output_flush_bytes = 64 << 10;  // pipelined answers are sent in batches up to this
  // Told of every answer as it is written, the router's and the parser's
  // (404, 405, 413, 414, 431) included: for metrics; must not block.
  std::function<void(const Response&)> answered;
};

class Server {
 public:
  struct Stats {
    uint64_t connections_accepted = 0;
    uint64_t connections_rejected = 0;  // over connections_max
    uint64_t connections_timed_out = 0;
    uint64_t requests = 0;
    uint64_t parse_errors = 0;
    size_t connections_open = 0;
  };

  Server(const Router& router, ServerConfig config);
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;
  ~Server();

  // Serves the listener until the loop stops; returns once every connection
  // has ended. The listener stays the caller's.
  reactor::Task<void> serve(int listen_fd);

  const Stats& stats() const { return _stats; }
  const ServerConfig& config() const { return _config; }
  const Router& router() const { return _router; }
  reactor::BufferRing* buffers() { return _buffers.get(); }
  bool multishot_recv() const { return _buffers != nullptr; }

 private:
  friend class Connection;
  reactor::Task<void> sweep();
  reactor::Task<void> run_connection(int fd);
  void reject(int fd);

  const Router& _router;
  ServerConfig _config;
  std::unique_ptr<reactor::BufferRing> _buffers;
  Connection* _connections = nullptr;  // intrusive list, for the sweeper
  // serve() waits here, through the loop's stop, for the last connection
  // and the sweeper to end: notified (never set) when either does.
  reactor::Event _drained;
  bool _sweeping = false;
  Stats _stats;
};

// Binds one SO_REUSEPORT listener per core on `endpoint` (port 0: the first
// one picks the port, the others follow). *bound gets the real address.
Result<std::vector<int>> listen_per_core(const reactor::Endpoint& endpoint, unsigned cores,
                                         reactor::Endpoint* bound);

}  // namespace coworker::http
