// Smp: the process's cores — one thread, Loop and io_uring each — and the
// channels between them.
//
// Pinning (Config::pin): core i is pinned to the i-th CPU the process may run
// on (its affinity mask at start, so `taskset` and systemd's CPUAffinity=
// choose the CPUs) only when there is exactly one core per such CPU — one
// participant owning its host, the production shape. Otherwise the threads
// stay unpinned and the kernel places them: pinning `--cores 1` to the first
// CPU put every participant of a cluster sharing a machine (the benchmarks,
// the tests, tools/cluster) and their io_uring workers on one CPU while the
// other sat idle (docs/PERFORMANCE.md).
//
// Smp::run() starts `cores` threads (core 0 on the calling thread), waits
// until every ring is set up, spawns the given main task on each core, and
// returns when every core is stopped and drained. SIGINT and SIGTERM are
// blocked in every thread and read on core 0 through a signalfd; the handler
// (by default: stop every core) runs on core 0's loop.
//
// Cross-core calls: `co_await submit_to(core, fn)` runs fn on that core and
// resumes with its result; fn may return a Task, which then runs there.
// `co_await smp.broadcast(fn)` does the same on every core at once.
//
// Shutdown is global: each loop reports when it is stopped with nothing left
// to run, and all loops leave their run() once every one reports at the same
// time — until then a drained core still serves its inbox, so a call from a
// core that is still draining is always answered.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <optional>
#include <thread>
#include <type_traits>
#include <vector>

#include "reactor/channel.h"
#include "reactor/loop.h"

namespace coworker::reactor {

template <typename F>
class Broadcast;

class Smp {
 public:
  struct Config {
    unsigned cores = 1;
    bool pin = true;  // pin when the cores match the allowed CPUs one to one (above)
    unsigned sq_entries = Ring::sq_entries_default;
    RingMode ring_mode = RingMode::best;
    // Doorbells by IORING_OP_MSG_RING when the kernel has it; false forces
    // the eventfd path (tests).
    bool msg_ring_doorbells = true;
  };
  using Main = std::function<Task<void>(unsigned core)>;
  using SignalHandler = std::function<void(int signo)>;

  explicit Smp(Config config);

  // The CPU each core is pinned to, given the CPUs the process may run on:
  // `allowed` itself when it has exactly `cores` entries, else none (empty).
  static std::vector<int> pinning(unsigned cores, const std::vector<int>& allowed);
  Smp(const Smp&) = delete;
  Smp& operator=(const Smp&) = delete;
  ~Smp();

  // The Smp the calling core belongs to.
  static Smp& current() {
    Loop& loop = Loop::current();
    COWORKER_ASSERT(loop._smp != nullptr);
    return *loop._smp;
  }

  unsigned cores() const { return _config.cores; }
  Loop& loop(unsigned core) { return *_loops[core]; }

  // Returns the exit code given to the first request_stop (0 by default).
  int run(Main main);
  void on_signal(SignalHandler handler) { _signal_handler = std::move(handler); }
  // Thread-safe: stop every core.
  void request_stop(int exit_code = 0);

  // `co_await smp.broadcast(fn)` runs fn on every core, this one included,
  // and resumes once every core has answered, with the answers in core
  // order (std::vector, or nothing for void). fn is copied to each core and
  // may return a Task, which then runs there. Like submit_to, a broadcast is
  // answered while the cores stop and drain, and the nested-call DAG rule of
  // channel.h applies to fn. Under g++ 12, a fn whose captures have
  // destructors goes in a named variable first (task.h, GCC PR 99576).
  template <typename F>
  Broadcast<F> broadcast(F fn);

  // Origin side: send a call (or queue it when the pair is full).
  void send(CrossCall* call);
  // Target side: hand a finished call back to its origin.
  void reply(CrossCall* call);

  // Loop hooks (loop.cc).
  void drain_inbox(Loop& loop);
  void ring_doorbells(Loop& loop);
  bool inbox_pending(Loop& loop);
  bool finished(Loop& loop, bool idle);

  struct Stats {
    uint64_t calls_sent = 0;
    uint64_t calls_queued = 0;  // had to wait for a slot
    uint64_t doorbells = 0;
  };
  Stats stats(unsigned core) const { return _state[core]->stats; }

 private:
  // A MSG_RING doorbell this core sent: if the kernel refuses it (the
  // target's completion queue overflowed), the eventfd rings instead.
  struct DoorbellSend : Completion {
    Loop* target = nullptr;
  };
  // State owned by one core (padded apart to avoid false sharing).
  struct alignas(64) CoreState {
    std::vector<uint32_t> in_flight;                   // per target
    std::vector<CrossCall*> waiting_head;              // per target
    std::vector<CrossCall*> waiting_tail;              // per target
    std::vector<uint8_t> doorbell_due;                 // per target
    std::vector<DoorbellSend> doorbell_sends;          // per target (MSG_RING)
    bool quiet = false;
    Stats stats;
  };

  ChannelPair& pair(unsigned origin, unsigned target) {
    return *_pairs[origin * _config.cores + target];
  }
  void core_main(unsigned core, Main& main);
  void push_request(CoreState& state, CrossCall* call);
  Task<void> read_signals();

  Config _config;
  std::vector<int> _pin_cpus;  // per core, from pinning(); empty: unpinned
  std::vector<std::unique_ptr<ChannelPair>> _pairs;
  std::vector<std::unique_ptr<CoreState>> _state;
  std::vector<Loop*> _loops;
  std::atomic<unsigned> _ready{0};
  std::atomic<bool> _setup_failed{false};
  std::atomic<unsigned> _quiet{0};
  std::atomic<bool> _stop_requested{false};
  std::atomic<int> _exit_code{0};
  SignalHandler _signal_handler;
  int _signal_fd = -1;
};

namespace detail {
template <typename T>
struct TaskValue {
  using type = void;
  static constexpr bool is_task = false;
};
template <typename T>
struct TaskValue<Task<T>> {
  using type = T;
  static constexpr bool is_task = true;
};

// One cross-core call's record: runs fn on the target core (as a task
// spawned there when fn returns a Task) and keeps its result for the origin.
// What the origin does with the reply is its owner's `complete` step.
template <typename F>
class CallRecord : public CrossCall {
  using Raw = std::invoke_result_t<F&>;
  static constexpr bool returns_task = TaskValue<Raw>::is_task;

 public:
  using Value = std::conditional_t<returns_task, typename TaskValue<Raw>::type, Raw>;

  CallRecord(unsigned core, F fn, Step on_reply) : _fn(std::move(fn)) {
    target = core;
    run = &CallRecord::run_on_target;
    complete = on_reply;
  }

  // Origin side, once the reply is back.
  Value take() {
    COWORKER_ASSERT(_result.has_value());
    if constexpr (!std::is_void_v<Value>) return std::move(*_result);
  }

 private:
  using Stored = std::conditional_t<std::is_void_v<Value>, bool, Value>;

  static void run_on_target(CrossCall* call) {
    auto* self = static_cast<CallRecord*>(call);
    if constexpr (returns_task) {
      Loop::current().spawn(self->run_task());
    } else {
      if constexpr (std::is_void_v<Value>) {
        self->_fn();
        self->_result.emplace(true);
      } else {
        self->_result.emplace(self->_fn());
      }
      Smp::current().reply(self);
    }
  }
  Task<void> run_task() {
    if constexpr (std::is_void_v<Value>) {
      co_await _fn();
      _result.emplace(true);
    } else {
      _result.emplace(co_await _fn());
    }
    Smp::current().reply(this);
  }

  F _fn;
  std::optional<Stored> _result;
};

}  // namespace detail

// The awaitable behind submit_to: the CrossCall lives inside it, hence inside
// the awaiting coroutine's frame, for the whole round trip.
template <typename F>
class [[nodiscard]] SubmitTo : private detail::CallRecord<F> {
  using Record = detail::CallRecord<F>;

 public:
  SubmitTo(unsigned core, F fn) : Record(core, std::move(fn), &SubmitTo::complete_on_origin) {}

  bool await_ready() const noexcept { return false; }
  void await_suspend(std::coroutine_handle<> waiter) {
    _waiter = waiter;
    this->origin = Loop::current().core();
    Smp::current().send(this);
  }
  typename Record::Value await_resume() { return this->take(); }

 private:
  static void complete_on_origin(CrossCall* call) {
    auto* self = static_cast<SubmitTo*>(static_cast<Record*>(call));
    Loop::current().schedule(self->_waiter);
  }

  std::coroutine_handle<> _waiter;
};

template <typename F>
SubmitTo<F> submit_to(unsigned core, F fn) {
  return SubmitTo<F>(core, std::move(fn));
}

namespace detail {
template <typename F>
Task<void> post_task(unsigned core, F fn) {
  auto call = submit_to(core, std::move(fn));  // named: see task.h on g++ 12
  co_await call;
}
}  // namespace detail

// Runs fn on `core` without waiting for it, from code that cannot await
// (an effect callback): a task spawned here sends the call and ends once fn
// has run there; fn's result is dropped. Calls posted from one core to
// another run in the order posted (spawned tasks start in order, and one
// pair's calls run in the order sent).
template <typename F>
void post_to(unsigned core, F fn) {
  Loop::current().spawn(detail::post_task(core, std::move(fn)));
}

// fn() on `core`, awaited: run at once when the caller is on that core
// already (no trip through the rings), else submit_to. fn may return a Task,
// as with submit_to. Name the returned task before awaiting it (GCC PR
// 99576, reactor/task.h): `auto call = on_core(0, ask); co_await call;`.
template <typename F>
auto on_core(unsigned core, F fn) -> Task<typename detail::CallRecord<F>::Value> {
  using Raw = std::invoke_result_t<F&>;
  if (Loop::current().core() == core) {
    if constexpr (detail::TaskValue<Raw>::is_task) {
      auto here = fn();
      co_return co_await here;
    } else if constexpr (std::is_void_v<Raw>) {
      fn();
      co_return;
    } else {
      co_return fn();
    }
  }
  auto call = submit_to(core, std::move(fn));
  co_return co_await call;
}

// The awaitable behind Smp::broadcast: one call record per core, each with
// its own copy of fn, in one vector owned by the awaitable (hence by the
// awaiting frame) for the whole round trip. The waiter is scheduled once the
// last reply is back; the answers come in core order.
template <typename F>
class [[nodiscard]] Broadcast {
  static_assert(std::is_copy_constructible_v<F>, "broadcast copies fn to every core");
  struct Call : detail::CallRecord<F> {
    Call(unsigned core, const F& fn, Broadcast* owner_)
        : detail::CallRecord<F>(core, fn, &Broadcast::complete_on_origin), owner(owner_) {}
    Broadcast* owner;
  };

 public:
  using Value = typename detail::CallRecord<F>::Value;

  Broadcast(Smp* smp, F fn) : _smp(smp), _fn(std::move(fn)) {}
  Broadcast(const Broadcast&) = delete;
  Broadcast& operator=(const Broadcast&) = delete;

  bool await_ready() const noexcept { return false; }
  void await_suspend(std::coroutine_handle<> waiter) {
    COWORKER_ASSERT(&Smp::current() == _smp);
    COWORKER_ASSERT(_calls.empty());
    const unsigned origin = Loop::current().core();
    _waiter = waiter;
    _pending = _smp->cores();
    // Fill the vector before sending anything: a sent call must not move.
    _calls.reserve(_smp->cores());
    for (unsigned core = 0; core < _smp->cores(); core++) {
      _calls.emplace_back(core, _fn, this).origin = origin;
    }
    for (Call& call : _calls) _smp->send(&call);
  }
  // One answer per core, in core order (nothing when fn returns void).
  auto await_resume() {
    COWORKER_ASSERT(_pending == 0);
    if constexpr (std::is_void_v<Value>) {
      for (Call& call : _calls) call.take();
    } else {
      std::vector<Value> answers;
      answers.reserve(_calls.size());
      for (Call& call : _calls) answers.push_back(call.take());
      return answers;
    }
  }

 private:
  static void complete_on_origin(CrossCall* call) {
    Broadcast* self = static_cast<Call*>(call)->owner;
    COWORKER_ASSERT(self->_pending > 0);
    if (--self->_pending == 0) Loop::current().schedule(self->_waiter);
  }

  Smp* _smp;
  F _fn;
  std::vector<Call> _calls;
  unsigned _pending = 0;
  std::coroutine_handle<> _waiter;
};

template <typename F>
Broadcast<F> Smp::broadcast(F fn) {
  return Broadcast<F>(this, std::move(fn));
}

}  // namespace coworker::reactor
