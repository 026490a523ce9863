// PeerTransport: one core's links to the other participants (DESIGN §3, §6).
//
// Runs on one core's Loop (core 0 first); every method is called on that
// core. The server owns it from start to shutdown: it calls listen() once,
// then send() and the setters from any task of the core, and co_awaits
// close() before destroying it.
//
// The consensus layers hand it opaque, already encoded messages addressed to
// a peer *address* (the peer's --peer-listen, "127.0.0.2:7100"); it frames
// them (peer_frame.h) and moves them over persistent TCP connections:
//
//        this participant                         peer at 127.0.0.2:7100
//   send(addr, bytes) ─► Link ══ our outgoing connection ══► reader ─► on_frame
//                        queue   (from our host; hello first)
//   on_frame ◄─ reader ◄══ the peer's outgoing connection ══ Link ◄─ its send()
//
// - Two connections per pair of participants, one each way: each side dials
//   the other, and a reply travels on the replier's own outgoing connection.
//   So a packet filter between the two hosts can cut one direction alone.
// - Outgoing (a Link per address): opened on demand by the first send, its
//   socket bound to our --peer-listen host (port 0) before connecting; our
//   hello goes first. Frames queued while the link writes wait and go out
//   together in the next send (one send per batch). When the connection
//   fails or the peer closes it, the link reconnects with exponential
//   backoff (backoff_min doubling to backoff_max) as long as frames wait.
//   Frames wait while disconnected, up to queue_bytes_max per peer; a frame
//   beyond it is dropped and counted (the consensus layers resend). A frame
//   written to a connection that then fails is lost with it: the transport
//   never resends. So is a batch written after the peer closed but before
//   the connection's watcher noticed (a turn later): a peek before every
//   send to catch that cost a syscall per batch, about 3.5% of a
//   participant's CPU at 64 clients (issue 18), to save a resend at a
//   peer's restart.
// - Incoming: every accepted connection gets a reader task. The first frame
//   must be a hello; a hello from another cluster (both ids non-zero and
//   different) or another protocol version closes the connection (logged,
//   counted) and nothing else changes. Then each frame goes to on_frame,
//   synchronously, on this core, in arrival order. A bad frame (checksum,
//   magic, length...) closes the connection; nothing after it is delivered.
//   Readers never wait for a send, so blocked sends never stop receiving.
//
// Lifetime: PeerTransport must outlive its tasks; close() ends them all
// (listener, readers, links, reconnect timers) and waits for them. A connect
// in flight is not cancellable, so close() may wait up to connect_timeout. A
// stopping Loop also ends every task (their waits are cancelled), so a
// transport that was never closed may be destroyed once the loop has run.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "reactor/multishot.h"
#include "reactor/net.h"
#include "reactor/ops.h"
#include "reactor/result.h"
#include "reactor/sync.h"
#include "reactor/task.h"
#include "tools/coworker/peer_frame.h"

namespace coworker::server {

// Who sent a frame: what its connection's hello said.
struct PeerInfo {
  std::string address;      // the sender's --peer-listen
  uint64_t id = 0;          // its arrival id, 0 while it has none
  uint64_t cluster = 0;     // 0 while it arrives
  reactor::Endpoint remote;  // the connection's source: the sender's host, some port
};

struct PeerConfig {
  reactor::Milliseconds connect_timeout{1000};
  // A send that makes no progress for this long drops its connection (a peer
  // that stopped reading); each partial send restarts the clock.
  reactor::Milliseconds send_timeout{10000};
  // Until an incoming connection's hello has come.
  reactor::Milliseconds hello_timeout{10000};
  reactor::Milliseconds backoff_min{50};
  reactor::Milliseconds backoff_max{2000};
  // Per peer, bytes of frames waiting (headers included, not the batch in
  // flight). An empty queue always takes one frame, so the largest frame
  // fits whatever the bound.
  size_t queue_bytes_max = size_t{64} << 20;
  size_t incoming_max = 1024;  // open incoming connections; more are closed at once
  size_t recv_buffer_bytes = size_t{64} << 10;
};

struct PeerStats {
  uint64_t frames_sent = 0;     // handed to the kernel in a send that completed
  uint64_t batches = 0;         // those sends: frames_sent / batches is the batching
  uint64_t bytes_sent = 0;      // hellos and headers included
  uint64_t frames_received = 0;  // delivered to on_frame
  uint64_t bytes_received = 0;  // payload bytes delivered
  uint64_t frames_dropped = 0;  // queue full, closing, or an unusable address
  uint64_t frames_lost = 0;     // in a send that failed: maybe delivered, maybe not
  uint64_t connects = 0;        // outgoing connections opened
  uint64_t connect_failures = 0;
  uint64_t accepted = 0;        // incoming connections
  uint64_t hellos_refused = 0;  // other cluster or protocol version
  uint64_t bad_frames = 0;      // incoming streams refused by the decoder or out of protocol
};

class PeerTransport {
 public:
  using OnFrame = std::function<void(const PeerInfo& from, FrameType type,
                                     std::string_view payload)>;

  explicit PeerTransport(OnFrame on_frame, PeerConfig config = {});
  PeerTransport(const PeerTransport&) = delete;
  PeerTransport& operator=(const PeerTransport&) = delete;
  ~PeerTransport();

  // Listens on `endpoint` (port 0: the kernel picks) and starts accepting.
  // The bound endpoint is our address in hellos, and its host is where our
  // outgoing connections come from. Once.
  Result<reactor::Endpoint> listen(reactor::Endpoint endpoint);
  // Queues a membership or phaser frame for the peer at `address`. Never
  // blocks; a frame it cannot queue is dropped and counted.
  void send(const std::string& address, FrameType type, std::string_view payload);

  // What our hellos say; open links send a fresh hello before their next
  // frames. A new cluster id also closes incoming connections whose hello
  // named another one.
  void set_cluster(uint64_t cluster);
  void set_self_id(uint64_t id);

  // A new owner (the RecoveryBeacon hands its transport to the ClusterNode,
  // beacon.h): who hears the frames from now on, and its connect timeout;
  // the listener and every link are kept.
  void hand_over(OnFrame on_frame, reactor::Milliseconds connect_timeout);

  // Ends everything and waits for it; frames still queued are dropped.
  reactor::Task<void> close();

  const PeerStats& stats() const { return _stats; }
  const std::string& address() const { return _address; }
  uint64_t cluster() const { return _cluster; }
  // Bytes waiting for `address` (0 for an unknown one).
  size_t queued_bytes(const std::string& address) const;

 private:
  struct Link;
  struct Incoming;
  using Clock = std::chrono::steady_clock;

  Link* link_for(const std::string& address);
  reactor::Task<void> run_accept();
  reactor::Task<void> run_incoming(int fd);
  bool on_incoming_frame(Incoming& in, FrameType type, std::string_view payload);
  bool on_hello(Incoming& in, std::string_view payload);
  reactor::Task<void> run_link(Link& link);
  reactor::Task<bool> open_connection(Link& link);
  reactor::Task<void> flush(Link& link);
  reactor::Task<void> drop_connection(Link& link);
  reactor::Task<void> watch_connection(Link& link, int fd);
  reactor::Task<void> sleep_backoff(Link& link);
  std::string hello_frame() const;
  void refresh_hellos();
  bool cluster_matches(uint64_t cluster) const;
  bool read_frames(Incoming& in, FrameDecoder& decoder, std::string_view input);

  OnFrame _on_frame;
  PeerConfig _config;
  reactor::Endpoint _self;
  std::string _address;
  uint64_t _cluster = 0;
  uint64_t _self_id = 0;
  int _listen_fd = -1;
  std::optional<reactor::MultishotAccept> _accept;
  // A socket pair whose first end every backoff sleeps on (a Recv with a
  // deadline); close() shuts it down, which wakes them all at once.
  int _wake_fds[2] = {-1, -1};
  std::map<std::string, std::unique_ptr<Link>, std::less<>> _links;
  std::vector<Incoming*> _incoming;
  reactor::TaskGroup _tasks;
  bool _listening = false;
  bool _closing = false;
  PeerStats _stats;
};

}  // namespace coworker::server
