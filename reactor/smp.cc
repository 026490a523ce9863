#include "reactor/smp.h"

#include <pthread.h>
#include <sched.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>

#include "reactor/ops.h"

namespace coworker::reactor {

namespace {

// The CPUs this process may run on, in increasing order.
std::vector<int> allowed_cpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  std::vector<int> cpus;
  if (sched_getaffinity(0, sizeof(set), &set) != 0) return cpus;
  for (int cpu = 0; cpu < CPU_SETSIZE; cpu++) {
    if (CPU_ISSET(cpu, &set)) cpus.push_back(cpu);
  }
  return cpus;
}

sigset_t stop_signals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  return set;
}

// Reads one signalfd_siginfo per signal.
class [[nodiscard]] ReadSignal : public detail::Op<ReadSignal, Waits::yes> {
 public:
  explicit ReadSignal(int fd) : _fd(fd) {}
  void prepare(io_uring_sqe* sqe) { io_uring_prep_read(sqe, _fd, &_info, sizeof(_info), 0); }
  Result<int> await_resume() {
    if (_res < 0) return detail::translate_error(_res, false);
    COWORKER_ASSERT(_res == sizeof(_info));
    return static_cast<int>(_info.ssi_signo);
  }

 private:
  int _fd;
  signalfd_siginfo _info{};
};

}  // namespace

std::vector<int> Smp::pinning(unsigned cores, const std::vector<int>& allowed) {
  if (allowed.size() != cores) return {};
  return allowed;
}

Smp::Smp(Config config) : _config(config) {
  COWORKER_ASSERT(config.cores >= 1);
  if (config.pin) _pin_cpus = pinning(config.cores, allowed_cpus());
  const unsigned n = config.cores;
  _pairs.reserve(size_t{n} * n);
  for (unsigned i = 0; i < n * n; i++) _pairs.push_back(std::make_unique<ChannelPair>());
  for (unsigned core = 0; core < n; core++) {
    auto state = std::make_unique<CoreState>();
    state->in_flight.assign(n, 0);
    state->waiting_head.assign(n, nullptr);
    state->waiting_tail.assign(n, nullptr);
    state->doorbell_due.assign(n, 0);
    state->doorbell_sends.resize(n);
    _state.push_back(std::move(state));
  }
  _loops.assign(n, nullptr);
}

Smp::~Smp() {
  if (_signal_fd >= 0) ::close(_signal_fd);
}

void Smp::request_stop(int exit_code) {
  bool expected = false;
  if (_stop_requested.compare_exchange_strong(expected, true)) _exit_code.store(exit_code);
  for (Loop* loop : _loops) {
    if (loop != nullptr) loop->request_stop(exit_code);
  }
}

int Smp::run(Main main) {
  const sigset_t signals = stop_signals();
  sigset_t previous;
  pthread_sigmask(SIG_BLOCK, &signals, &previous);
  _signal_fd = ::signalfd(-1, &signals, SFD_CLOEXEC | SFD_NONBLOCK);
  COWORKER_ASSERT(_signal_fd >= 0);

  std::vector<std::thread> threads;
  for (unsigned core = 1; core < _config.cores; core++) {
    threads.emplace_back([this, core, &main] { core_main(core, main); });
  }
  core_main(0, main);
  for (std::thread& thread : threads) thread.join();

  pthread_sigmask(SIG_SETMASK, &previous, nullptr);
  ::close(_signal_fd);
  _signal_fd = -1;
  return _exit_code.load();
}

void Smp::core_main(unsigned core, Main& main) {
  if (!_pin_cpus.empty()) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(_pin_cpus[core], &set);
    pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
  }
  Loop loop(Loop::Config{core, _config.sq_entries, _config.ring_mode});
  loop._smp = this;
  CoreState& state = *_state[core];
  for (unsigned target = 0; target < _config.cores; target++) {
    state.doorbell_sends[target].callback = [](Completion* self, int32_t res, uint32_t) {
      if (res < 0) static_cast<DoorbellSend*>(self)->target->wake();
    };
  }
  _loops[core] = &loop;
  // Every core's ring must exist before anyone rings a doorbell.
  _ready.fetch_add(1, std::memory_order_acq_rel);
  while (_ready.load(std::memory_order_acquire) < _config.cores) std::this_thread::yield();
  for (unsigned target = 0; target < _config.cores; target++) {
    state.doorbell_sends[target].target = _loops[target];
  }
  if (_stop_requested.load()) loop.request_stop(_exit_code.load());

  if (core == 0) loop.spawn(read_signals());
  loop.spawn(main(core));
  loop.run();
  _ready.fetch_sub(1, std::memory_order_acq_rel);
  // Wait until every loop has left run() before this one's ring goes away:
  // another core may still be sending it a (harmless, ignored) doorbell.
  while (_ready.load(std::memory_order_acquire) > 0) std::this_thread::yield();
}

Task<void> Smp::read_signals() {
  for (;;) {
    Result<int> signo = co_await ReadSignal{_signal_fd};
    if (!signo) co_return;  // ECANCELED: the loop is stopping
    if (_signal_handler) {
      _signal_handler(*signo);
    } else {
      request_stop(0);
    }
  }
}

void Smp::push_request(CoreState& state, CrossCall* call) {
  // Once pushed, the target core owns the call until it replies.
  const unsigned target = call->target;
  COWORKER_ASSERT(state.in_flight[target] < channel_capacity);
  state.in_flight[target]++;
  const bool pushed = pair(call->origin, target).requests.push(call);
  COWORKER_ASSERT(pushed);  // in_flight bounds the ring
  state.doorbell_due[target] = 1;
  state.stats.calls_sent++;
}

void Smp::send(CrossCall* call) {
  COWORKER_ASSERT(call->origin < _config.cores);
  COWORKER_ASSERT(call->target < _config.cores);
  CoreState& state = *_state[call->origin];
  call->next_waiting = nullptr;
  if (state.in_flight[call->target] < channel_capacity &&
      state.waiting_head[call->target] == nullptr) {
    push_request(state, call);
    return;
  }
  // Full: queue in order behind earlier waiters.
  state.stats.calls_queued++;
  if (state.waiting_tail[call->target] != nullptr) {
    state.waiting_tail[call->target]->next_waiting = call;
  } else {
    state.waiting_head[call->target] = call;
  }
  state.waiting_tail[call->target] = call;
}

void Smp::reply(CrossCall* call) {
  // Once pushed, the call belongs to the origin, which may complete and free
  // it (it lives in the awaiting coroutine's frame) before push returns:
  // read what we need first (ASan caught the late read under load).
  const unsigned origin = call->origin;
  const unsigned target = call->target;
  COWORKER_ASSERT(Loop::current().core() == target);
  const bool pushed = pair(target, origin).replies.push(call);
  COWORKER_ASSERT(pushed);  // the origin never has more calls in flight than slots
  _state[target]->doorbell_due[origin] = 1;
}

void Smp::drain_inbox(Loop& loop) {
  const unsigned self = loop.core();
  CoreState& state = *_state[self];
  for (unsigned other = 0; other < _config.cores; other++) {
    // Replies first: they free slots and never create work elsewhere.
    CrossCall* call = nullptr;
    ChannelRing& replies = pair(other, self).replies;
    while (replies.pop(call)) {
      COWORKER_ASSERT(call->origin == self);
      COWORKER_ASSERT(state.in_flight[other] > 0);
      state.in_flight[other]--;
      call->complete(call);
      if (CrossCall* next = state.waiting_head[other]) {
        state.waiting_head[other] = next->next_waiting;
        if (state.waiting_head[other] == nullptr) state.waiting_tail[other] = nullptr;
        push_request(state, next);
      }
    }
    ChannelRing& requests = pair(other, self).requests;
    while (requests.pop(call)) {
      COWORKER_ASSERT(call->target == self);
      call->run(call);
    }
  }
}

bool Smp::inbox_pending(Loop& loop) {
  const unsigned self = loop.core();
  for (unsigned other = 0; other < _config.cores; other++) {
    if (!pair(other, self).requests.empty() || !pair(other, self).replies.empty()) return true;
  }
  return false;
}

void Smp::ring_doorbells(Loop& loop) {
  CoreState& state = *_state[loop.core()];
  bool any = false;
  for (unsigned target = 0; target < _config.cores; target++) any |= state.doorbell_due[target];
  if (!any) return;
  // Dekker with Loop::run: our pushes are visible before we read _sleeping.
  std::atomic_thread_fence(std::memory_order_seq_cst);
  for (unsigned target = 0; target < _config.cores; target++) {
    if (!state.doorbell_due[target]) continue;
    state.doorbell_due[target] = 0;
    if (target == loop.core()) continue;  // we are awake
    Loop* other = _loops[target];
    if (!other->_sleeping.load(std::memory_order_seq_cst)) continue;
    state.stats.doorbells++;
    if (_config.msg_ring_doorbells && loop.ring().features().msg_ring) {
      io_uring_sqe* sqe = loop.get_sqe();
      io_uring_prep_msg_ring(sqe, other->ring().fd(), 0,
                             reinterpret_cast<uint64_t>(&other->_doorbell_completion), 0);
      io_uring_sqe_set_data(sqe, &state.doorbell_sends[target]);
    } else {
      other->wake();
    }
  }
}

bool Smp::finished(Loop& loop, bool idle) {
  CoreState& state = *_state[loop.core()];
  if (idle != state.quiet) {
    state.quiet = idle;
    if (idle) {
      if (_quiet.fetch_add(1, std::memory_order_acq_rel) + 1 == _config.cores) {
        for (Loop* other : _loops) {
          if (other != &loop) other->wake();
        }
      }
    } else {
      _quiet.fetch_sub(1, std::memory_order_acq_rel);
    }
  }
  return idle && _quiet.load(std::memory_order_acquire) == _config.cores;
}

}  // namespace coworker::reactor
