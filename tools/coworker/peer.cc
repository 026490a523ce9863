// PeerTransport (peer.h): the listener and its readers, one Link per peer
// address with its writer and its watcher, reconnects and close(). Every
// task here runs on the transport's core and is counted in its TaskGroup.
#include "tools/coworker/peer.h"

#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <utility>

#include "tools/coworker/log.h"

namespace coworker::server {

using reactor::Endpoint;
using reactor::Loop;
using reactor::Milliseconds;

namespace {

// A batch buffer that held more than this is freed after its send.
constexpr size_t batch_keep_max = size_t{1} << 20;
// Backoff doubles at most this many times (then backoff_max holds anyway).
constexpr unsigned backoff_doublings_max = 16;

unsigned core() { return Loop::current().core(); }

}  // namespace

// One peer address: the frames waiting for it and our outgoing connection.
// Created by the first send() to the address, owned by the transport until
// it is destroyed; its writer task (run_link) and the connection's watcher
// run on the transport's core.
struct PeerTransport::Link {
  std::string address;
  Endpoint remote;
  std::string queued;      // encoded frames waiting for the next batch
  size_t queued_frames = 0;
  std::string sending;     // the batch in flight
  int fd = -1;             // the connection; owned by run_link
  bool broken = false;     // the watcher saw it end, or a send failed
  bool watching = false;   // the watcher still uses fd
  bool hello_due = false;  // the next batch starts with our hello
  bool dropping = false;   // frames were dropped since the last good send (logged once)
  unsigned failures = 0;   // failed connects and short-lived connections in a row
  Clock::time_point connected_at;
  // Notified when frames are queued, the connection breaks, the watcher
  // ends, a fresh hello is due, or the transport closes.
  reactor::Event changed;
};

// One accepted connection, living in its reader's frame (run_incoming).
struct PeerTransport::Incoming {
  int fd = -1;
  bool greeted = false;  // its hello came and was accepted
  PeerInfo from;
};

PeerTransport::PeerTransport(OnFrame on_frame, PeerConfig config)
    : _on_frame(std::move(on_frame)), _config(config) {
  COWORKER_ASSERT(_on_frame != nullptr);
  COWORKER_ASSERT(_config.backoff_min.count() > 0);
  COWORKER_ASSERT(_config.backoff_min <= _config.backoff_max);
  COWORKER_ASSERT(_config.recv_buffer_bytes > 0);
}

PeerTransport::~PeerTransport() {
  // close() or the loop's stop ended every task; the frames they used go now.
  COWORKER_ASSERT(_tasks.running() == 0);
  COWORKER_ASSERT(_incoming.empty());
  _accept.reset();
  if (_listen_fd >= 0) ::close(_listen_fd);
  for (int fd : _wake_fds) {
    if (fd >= 0) ::close(fd);
  }
}

Result<Endpoint> PeerTransport::listen(Endpoint endpoint) {
  COWORKER_ASSERT(!_listening);
  COWORKER_ASSERT(!_closing);
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, _wake_fds) < 0) {
    return Errno{errno};
  }
  Result<int> fd = reactor::listen_tcp(endpoint, reactor::ReusePort::no);
  if (!fd) return fd.error();
  _listen_fd = *fd;
  Result<Endpoint> bound = reactor::local_endpoint(_listen_fd);
  if (!bound) return bound.error();  // the destructor closes what is open
  _self = *bound;
  _address = _self.to_string();
  COWORKER_ASSERT(!_address.empty());
  COWORKER_ASSERT(_address.size() <= peer_address_bytes_max);
  _listening = true;
  _accept.emplace(_listen_fd);
  _tasks.spawn(run_accept());
  return _self;
}

// ---- sending ----------------------------------------------------------------

PeerTransport::Link* PeerTransport::link_for(const std::string& address) {
  auto found = _links.find(address);
  if (found != _links.end()) return found->second.get();
  Result<Endpoint, std::string> remote = Endpoint::parse(address);
  if (!remote) {
    log_warn(core(), "peer: cannot send to '{}': {}", address, remote.error());
    return nullptr;
  }
  auto link = std::make_unique<Link>();
  link->address = address;
  link->remote = *remote;
  Link* raw = link.get();
  _links.emplace(address, std::move(link));
  _tasks.spawn(run_link(*raw));
  return raw;
}

void PeerTransport::send(const std::string& address, FrameType type, std::string_view payload) {
  COWORKER_ASSERT(_listening);  // our hello needs our address
  COWORKER_ASSERT(type != FrameType::hello);  // the transport's own
  COWORKER_ASSERT(frame_type_known(static_cast<uint8_t>(type)));
  COWORKER_ASSERT(payload.size() <= frame_payload_bytes_max);
  Link* link = _closing ? nullptr : link_for(address);
  if (link == nullptr) {
    _stats.frames_dropped++;
    return;
  }
  const size_t bytes = frame_header_bytes + payload.size();
  if (!link->queued.empty() && link->queued.size() + bytes > _config.queue_bytes_max) {
    _stats.frames_dropped++;
    if (!std::exchange(link->dropping, true)) {
      log_warn(core(), "peer: queue to {} full ({} bytes): dropping frames", address,
               link->queued.size());
    }
    return;
  }
  encode_frame(&link->queued, type, payload);
  link->queued_frames++;
  // The bound holds, or this frame is alone in the queue.
  if (link->queued_frames > 1) COWORKER_ASSERT(link->queued.size() <= _config.queue_bytes_max);
  link->changed.notify_all();
}

size_t PeerTransport::queued_bytes(const std::string& address) const {
  auto found = _links.find(address);
  return found == _links.end() ? 0 : found->second->queued.size();
}

std::string PeerTransport::hello_frame() const {
  std::string frame;
  encode_frame(&frame, FrameType::hello,
               encode_hello(Hello{.version = peer_protocol_version,
                                  .cluster = _cluster,
                                  .arrival_id = _self_id,
                                  .address = _address}));
  return frame;
}

void PeerTransport::refresh_hellos() {
  for (auto& [address, link] : _links) {
    if (link->fd < 0) continue;  // a new connection starts with a fresh hello anyway
    link->hello_due = true;
    link->changed.notify_all();
  }
}

void PeerTransport::set_self_id(uint64_t id) {
  if (id == _self_id) return;
  _self_id = id;
  refresh_hellos();
}

void PeerTransport::hand_over(OnFrame on_frame, reactor::Milliseconds connect_timeout) {
  COWORKER_ASSERT(on_frame != nullptr);
  _on_frame = std::move(on_frame);
  _config.connect_timeout = connect_timeout;
}

bool PeerTransport::cluster_matches(uint64_t cluster) const {
  return cluster == 0 || _cluster == 0 || cluster == _cluster;
}

void PeerTransport::set_cluster(uint64_t cluster) {
  if (cluster == _cluster) return;
  _cluster = cluster;
  for (Incoming* in : _incoming) {
    if (!in->greeted || cluster_matches(in->from.cluster)) continue;
    log_warn(core(), "peer: closing the connection from {}: its cluster {:x} is not ours ({:x})",
             in->from.address, in->from.cluster, _cluster);
    _stats.hellos_refused++;
    ::shutdown(in->fd, SHUT_RDWR);  // its reader ends and closes it
  }
  refresh_hellos();
}

// ---- outgoing links -------------------------------------------------------------

// The writer of one link: connects when frames wait, sends them in batches,
// reconnects after a failure, and leaves at close or stop.
reactor::Task<void> PeerTransport::run_link(Link& link) {
  Loop& loop = Loop::current();
  while (!_closing && !loop.stopping()) {
    if (link.fd >= 0 && link.broken) {
      co_await drop_connection(link);
      continue;
    }
    const bool hello_alone = link.fd >= 0 && link.hello_due;
    if (link.queued.empty() && !hello_alone) {
      Status woken = co_await link.changed.wait();
      if (!woken) break;  // the loop stops
      continue;
    }
    if (link.fd < 0 && !co_await open_connection(link)) continue;
    co_await flush(link);
  }
  if (link.fd >= 0) co_await drop_connection(link);
  // Nobody will send these: they go with the transport.
  _stats.frames_dropped += std::exchange(link.queued_frames, 0);
  link.queued = std::string();
}

// Waits out the backoff after failures, then connects from our host. True
// when the link has a connection.
reactor::Task<bool> PeerTransport::open_connection(Link& link) {
  COWORKER_ASSERT(link.fd < 0);
  COWORKER_ASSERT(!link.watching);
  if (link.failures > 0) co_await sleep_backoff(link);
  if (_closing || Loop::current().stopping()) co_return false;
  Result<int> fd = co_await reactor::connect_tcp(link.remote, &_self, _config.connect_timeout);
  if (_closing || Loop::current().stopping()) {
    if (fd) (void)co_await reactor::Close{*fd};
    co_return false;
  }
  if (!fd) {
    _stats.connect_failures++;
    link.failures++;
    // Once per outage; the retries are quiet.
    if (link.failures == 1) {
      log_info(core(), "peer: cannot connect to {}: {}; retrying", link.address,
               fd.error().message());
    }
    co_return false;
  }
  _stats.connects++;
  link.fd = *fd;
  link.broken = false;
  link.hello_due = true;
  link.connected_at = Clock::now();
  link.watching = true;
  _tasks.spawn(watch_connection(link, *fd));
  log_debug(core(), "peer: connected to {}", link.address);
  co_return true;
}

// Sleeps on the wake socket with a deadline: the deadline is the backoff,
// close() ends it early by shutting the socket down, the loop's stop too.
reactor::Task<void> PeerTransport::sleep_backoff(Link& link) {
  COWORKER_ASSERT(link.failures > 0);
  const unsigned doublings = std::min(link.failures - 1, backoff_doublings_max);
  const Milliseconds delay = std::min(_config.backoff_min * (int64_t{1} << doublings),
                                      _config.backoff_max);
  char byte = 0;
  (void)co_await reactor::Recv{_wake_fds[0], std::span<char>(&byte, 1), delay};
}

// One batch: our hello when due, then every frame queued, in one sendmsg.
reactor::Task<void> PeerTransport::flush(Link& link) {
  COWORKER_ASSERT(link.fd >= 0);
  COWORKER_ASSERT(link.sending.empty());
  std::swap(link.queued, link.sending);
  const size_t frames = std::exchange(link.queued_frames, 0);
  std::string hello;
  if (std::exchange(link.hello_due, false)) hello = hello_frame();
  iovec iov[2];
  size_t count = 0;
  if (!hello.empty()) iov[count++] = iovec{hello.data(), hello.size()};
  if (!link.sending.empty()) iov[count++] = iovec{link.sending.data(), link.sending.size()};
  COWORKER_ASSERT(count > 0);
  const size_t bytes = hello.size() + link.sending.size();
  Result<size_t> sent =
      co_await reactor::SendMsg{link.fd, std::span<iovec>(iov, count), _config.send_timeout};
  if (sent) {
    _stats.frames_sent += frames;
    _stats.batches++;
    _stats.bytes_sent += bytes;
    link.dropping = false;
  } else {
    // Some of it may have arrived: the frames are lost, not resent.
    _stats.frames_lost += frames;
    link.broken = true;
    if (!_closing) {
      log_info(core(), "peer: send to {} failed: {}; {} frames lost", link.address,
               sent.error().message(), frames);
    }
  }
  if (link.sending.capacity() > batch_keep_max) {
    link.sending = std::string();
  } else {
    link.sending.clear();
  }
}

// Ends the link's connection: stops the watcher, closes the socket, and
// counts a connection that died young (a refused hello) as a failure, so a
// peer that keeps closing on us is retried with backoff.
reactor::Task<void> PeerTransport::drop_connection(Link& link) {
  COWORKER_ASSERT(link.fd >= 0);
  const int fd = std::exchange(link.fd, -1);
  ::shutdown(fd, SHUT_RDWR);  // ends the watcher's recv
  while (link.watching) co_await link.changed.wait_through_stop();
  (void)co_await reactor::Close{fd};
  link.broken = false;
  link.hello_due = false;
  if (Clock::now() - link.connected_at >= _config.backoff_max) {
    link.failures = 0;
  } else {
    link.failures++;
  }
  log_debug(core(), "peer: connection to {} closed", link.address);
}

// The peer never writes on our outgoing connection: a recv that returns
// means it closed (or reset, or broke the protocol). Noticing at once lets
// the link reconnect before its next batch instead of losing it.
reactor::Task<void> PeerTransport::watch_connection(Link& link, int fd) {
  COWORKER_ASSERT(link.watching);
  char byte = 0;
  (void)co_await reactor::Recv{fd, std::span<char>(&byte, 1)};
  link.watching = false;
  link.broken = true;
  link.changed.notify_all();
}

// ---- incoming connections -----------------------------------------------------

reactor::Task<void> PeerTransport::run_accept() {
  Loop& loop = Loop::current();
  for (;;) {
    Result<int> fd = co_await _accept->next();
    if (!fd) {
      if (fd.error().code == ECANCELED || _closing || loop.stopping()) break;
      // EMFILE, ENFILE, ENOMEM, ECONNABORTED: transient; breathe and retry.
      log_warn(core(), "peer: accept on {}: {}", _address, fd.error().message());
      (void)co_await reactor::Timeout{Milliseconds{10}};
      continue;
    }
    if (_closing || _incoming.size() >= _config.incoming_max) {
      if (!_closing) {
        log_warn(core(), "peer: {} incoming connections: refusing one", _incoming.size());
      }
      ::close(*fd);
      continue;
    }
    _stats.accepted++;
    reactor::set_nodelay(*fd);
    _tasks.spawn(run_incoming(*fd));
  }
  co_await _accept->close();
  (void)co_await reactor::Close{std::exchange(_listen_fd, -1)};
}

// The reader of one accepted connection: a hello first, then frames to
// on_frame until the peer closes, a frame is bad, or the transport closes.
reactor::Task<void> PeerTransport::run_incoming(int fd) {
  Incoming in;
  in.fd = fd;
  socklen_t length = sizeof(in.from.remote.address);
  if (::getpeername(fd, reinterpret_cast<sockaddr*>(&in.from.remote.address), &length) < 0) {
    in.from.remote = Endpoint{};
  }
  _incoming.push_back(&in);
  std::string buffer(_config.recv_buffer_bytes, '\0');
  FrameDecoder decoder;
  // The hello must come within hello_timeout of the accept; afterwards an
  // idle connection is normal.
  const Clock::time_point hello_by = Clock::now() + _config.hello_timeout;
  bool open = !_closing;
  while (open) {
    Milliseconds deadline{0};
    if (!in.greeted) {
      deadline = std::max(Milliseconds{1},
                          std::chrono::duration_cast<Milliseconds>(hello_by - Clock::now()));
    }
    Result<size_t> received = co_await reactor::Recv{fd, buffer, deadline};
    if (!received || *received == 0 || _closing) {
      if (!received && received.error().code == ETIMEDOUT) {
        log_warn(core(), "peer: no hello from {} in time: closing", in.from.remote.to_string());
      }
      break;
    }
    open = read_frames(in, decoder, std::string_view(buffer.data(), *received));
  }
  _incoming.erase(std::find(_incoming.begin(), _incoming.end(), &in));
  (void)co_await reactor::Close{fd};
}

// Decodes what one recv brought; false when the connection must close.
bool PeerTransport::read_frames(Incoming& in, FrameDecoder& decoder, std::string_view input) {
  while (!input.empty()) {
    size_t used = 0;
    const FrameDecoder::Step step = decoder.feed(input, &used);
    input.remove_prefix(used);
    if (step == FrameDecoder::Step::more) {
      COWORKER_ASSERT(input.empty());
      return true;
    }
    if (step == FrameDecoder::Step::error) {
      _stats.bad_frames++;
      log_warn(core(), "peer: bad frame from {} ({}): {}; closing",
               in.greeted ? in.from.address : std::string("?"), in.from.remote.to_string(),
               decoder.error());
      return false;
    }
    const FrameDecoder::Frame& frame = decoder.frame();
    if (!on_incoming_frame(in, frame.type, frame.payload)) return false;
    if (_closing) return false;
  }
  return true;
}

bool PeerTransport::on_incoming_frame(Incoming& in, FrameType type, std::string_view payload) {
  if (type == FrameType::hello) return on_hello(in, payload);
  if (!in.greeted) {
    _stats.bad_frames++;
    log_warn(core(), "peer: {} sent a {} frame before its hello; closing",
             in.from.remote.to_string(), frame_type_name(type));
    return false;
  }
  // set_cluster may have changed ours since the hello (it also shuts the
  // connection down; this stops what is already in the buffer).
  if (!cluster_matches(in.from.cluster)) return false;
  _stats.frames_received++;
  _stats.bytes_received += payload.size();
  _on_frame(in.from, type, payload);
  return true;
}

bool PeerTransport::on_hello(Incoming& in, std::string_view payload) {
  Result<Hello, std::string_view> hello = decode_hello(payload);
  if (!hello) {
    _stats.bad_frames++;
    log_warn(core(), "peer: bad hello from {}: {}; closing", in.from.remote.to_string(),
             hello.error());
    return false;
  }
  std::string why;
  if (hello->version != peer_protocol_version) {
    why = fmt::format("protocol version {}, ours {}", hello->version, peer_protocol_version);
  } else if (!cluster_matches(hello->cluster)) {
    why = fmt::format("cluster {:x}, ours {:x}", hello->cluster, _cluster);
  } else if (in.greeted && hello->address != in.from.address) {
    why = fmt::format("a hello changed its address from {}", in.from.address);
  }
  if (!why.empty()) {
    _stats.hellos_refused++;
    log_warn(core(), "peer: refused {} from {}: {}", hello->address, in.from.remote.to_string(),
             why);
    return false;
  }
  const bool first = !in.greeted;
  in.greeted = true;
  in.from.address = std::move(hello->address);
  in.from.id = hello->arrival_id;
  in.from.cluster = hello->cluster;
  if (first) {
    // An older connection from the same peer is a leftover: the peer dialled
    // again because that one failed on its side.
    for (Incoming* other : _incoming) {
      if (other != &in && other->greeted && other->from.address == in.from.address) {
        ::shutdown(other->fd, SHUT_RDWR);
      }
    }
    log_debug(core(), "peer: {} connected from {} (id {}, cluster {:x})", in.from.address,
              in.from.remote.to_string(), in.from.id, in.from.cluster);
  }
  return true;
}

// ---- close --------------------------------------------------------------------

reactor::Task<void> PeerTransport::close() {
  if (!_closing) {
    _closing = true;
    if (_accept) co_await _accept->close();  // run_accept then leaves
    for (Incoming* in : _incoming) ::shutdown(in->fd, SHUT_RDWR);
    for (auto& [address, link] : _links) {
      if (link->fd >= 0) ::shutdown(link->fd, SHUT_RDWR);  // ends a blocked send
      link->changed.notify_all();
    }
    if (_wake_fds[0] >= 0) ::shutdown(_wake_fds[0], SHUT_RDWR);  // ends backoff sleeps
  }
  co_await _tasks.join();
}

}  // namespace coworker::server
