// Multishot accept and multishot recv: armed objects rather than awaitables.
//
// One io_uring submission keeps producing completions (IORING_CQE_F_MORE set
// while it stays armed). Each completion only queues its payload — an
// accepted fd, or a (buffer id, length) of a provided buffer (buffer_ring.h) —
// and wakes the one reader, who takes items with `co_await x.next()`. The op
// re-arms at the reader's next wait once a completion arrives without
// F_MORE, and after ENOBUFS only when a buffer comes back to the ring.
//
// Owned by one task on one core (a listener's accept loop, a connection) for
// its life. close() cancels an armed op and waits for its final completion,
// so the object may then go away; it also gives back what was queued (closes
// accepted fds, recycles buffers). A stopping loop cancels armed ops like any
// op that waits on the outside world: next() then fails with ECANCELED.
//
// Feature-probed: when the ring lacks multishot accept, MultishotAccept
// falls back to one Accept per next(); a connection without a BufferRing uses
// plain Recv (see http/connection.cc). Measured gains are in
// docs/ARCHITECTURE.md ("HTTP").
#pragma once

#include <coroutine>
#include <cstdint>
#include <deque>

#include "reactor/buffer_ring.h"
#include "reactor/loop.h"
#include "reactor/ops.h"
#include "reactor/result.h"
#include "reactor/task.h"

namespace coworker::reactor {

namespace detail {

// The arming, cancelling and waking shared by both multishot ops.
class Multishot : protected Completion {
 public:
  Multishot(const Multishot&) = delete;
  Multishot& operator=(const Multishot&) = delete;

  bool armed() const { return _armed; }

 protected:
  Multishot() = default;
  ~Multishot() { COWORKER_ASSERT(!_armed); }

  // Submits the op prepared by `prepare_sqe` and tracks it for stop.
  template <typename Prepare>
  void arm(Prepare prepare_sqe) {
    COWORKER_ASSERT(!_armed);
    Loop& loop = Loop::current();
    io_uring_sqe* sqe = loop.get_sqe();
    prepare_sqe(sqe);
    io_uring_sqe_set_data(sqe, static_cast<Completion*>(this));
    _armed = true;
    _waiting.user_data = reinterpret_cast<uint64_t>(static_cast<Completion*>(this));
    loop.track(&_waiting);
  }
  // Asks the kernel to end the armed op; its final completion follows.
  void cancel();
  // Bookkeeping for a completion; true when it was the op's last one.
  bool settle(int32_t res, uint32_t flags);
  void wake_reader() {
    if (_reader) Loop::current().schedule(std::exchange(_reader, {}));
  }
  // The awaitable behind close(): resumes at the final completion.
  struct Disarmed {
    Multishot* self;
    bool await_ready() const noexcept { return !self->_armed; }
    void await_suspend(std::coroutine_handle<> h) noexcept { self->_closer = h; }
    void await_resume() const noexcept {}
  };

  bool _armed = false;
  bool _cancelling = false;  // a cancel we asked for (close or pause)
  bool _closing = false;
  int _error = 0;            // first error seen, reported after queued items
  // The op's completion records, like Op::_waiter, rather than Events: one
  // reader (asserted) whose wait arms the op, and the CQE callback that
  // wakes it decides whether to re-arm by whether it waits. Stop reaches
  // them through the op's cancellation, not through Event::wait.
  std::coroutine_handle<> _reader;
  std::coroutine_handle<> _closer;
  Waiting _waiting;
};

}  // namespace detail

class MultishotAccept : public detail::Multishot {
 public:
  // `listen_fd` stays the caller's. Multishot when the ring supports it.
  explicit MultishotAccept(int listen_fd);
  ~MultishotAccept();

  struct [[nodiscard]] Next {
    MultishotAccept* self;
    bool await_ready() const noexcept;
    void await_suspend(std::coroutine_handle<> h);
    Result<int> await_resume();
  };
  // The next accepted fd (nonblocking, close-on-exec), or an error:
  // ECANCELED once closed or stopping; EMFILE and the like are transient.
  Task<Result<int>> next();
  // Cancels, waits for the final completion, closes fds not taken.
  Task<void> close();
  bool multishot() const { return _multishot; }

 private:
  static void on_cqe(Completion* self, int32_t res, uint32_t flags);
  void arm_accept();

  int _fd;
  bool _multishot;
  std::deque<int> _ready;
};

class MultishotRecv : public detail::Multishot {
 public:
  struct Chunk {
    uint16_t id = 0;
    uint32_t length = 0;  // 0: the peer closed (no buffer then)
  };

  // `buffers` must outlive this object. At most `queued_max` chunks wait for
  // the reader; beyond that the op is paused (cancelled) until the reader
  // catches up, so one fast sender cannot take the whole ring.
  MultishotRecv(int fd, BufferRing* buffers, size_t queued_max = 8);
  ~MultishotRecv();

  struct [[nodiscard]] Next {
    MultishotRecv* self;
    bool await_ready() const noexcept;
    void await_suspend(std::coroutine_handle<> h);
    Result<Chunk> await_resume();
  };
  // The next chunk in arrival order. Give its buffer back with recycle()
  // as soon as its bytes are used. ECANCELED once closed or stopping.
  Next next() { return Next{this}; }
  std::span<const char> data(const Chunk& chunk) const {
    return _buffers->data(chunk.id, chunk.length);
  }
  void recycle(const Chunk& chunk) { _buffers->recycle(chunk.id); }
  // Cancels, waits for the final completion, recycles chunks not taken.
  Task<void> close();
  size_t queued() const { return _queue.size(); }

 private:
  friend class BufferRing;
  static void on_cqe(Completion* self, int32_t res, uint32_t flags);
  void arm_recv();
  void rearm();  // a buffer came back after ENOBUFS

  int _fd;
  BufferRing* _buffers;
  size_t _queued_max;
  bool _eof = false;
  bool _starving = false;
  std::deque<Chunk> _queue;
  MultishotRecv* _prev_starved = nullptr;
  MultishotRecv* _next_starved = nullptr;
};

}  // namespace coworker::reactor
