#pragma once
// One gate, two users: fork_gate::Walk (loader walks vs fork()) and
// shim::own::HostCall (the host's close/dup hooks vs the shim creating its own
// descriptors). Both need the same thing: many short passes on one side, a
// rare closer on the other that must see no pass in progress, without a lock
// (a lock would be one more thing a fork() child inherits held, and the
// passes run inside hooked calls and signal-safe paths). So it is a Dekker
// handshake on two sequentially consistent atomics: a pass counts itself in,
// then looks at the flag; the closer sets the flag, then looks at the count.
// Whichever order the two run in, at least one side sees the other. A pass
// that finds the gate closed counts itself out and yields until it reopens.
// How long the closer waits, and what it does when the wait runs out, is the
// closer's business (fork_gate proceeds after 5 s, own_fds gives up and
// reopens), so the gate only offers the steps.
#include <sched.h>

#include <atomic>

namespace connleak {

class Gate {
 public:
  constexpr Gate() = default;
  Gate(const Gate&) = delete;
  Gate& operator=(const Gate&) = delete;

  // The passing side, held for the duration of one pass.
  class Pass {
   public:
    explicit Pass(Gate& gate) : gate_(gate) {
      for (;;) {
        gate_.inside_.fetch_add(1, std::memory_order_seq_cst);
        if (!gate_.closed_.load(std::memory_order_seq_cst)) return;
        gate_.inside_.fetch_sub(1, std::memory_order_seq_cst);
        while (gate_.closed_.load(std::memory_order_seq_cst)) sched_yield();
      }
    }
    ~Pass() { gate_.inside_.fetch_sub(1, std::memory_order_seq_cst); }
    Pass(const Pass&) = delete;
    Pass& operator=(const Pass&) = delete;

   private:
    Gate& gate_;
  };

  // The closing side: close(), then wait while !empty(), then open().
  void close() { closed_.store(true, std::memory_order_seq_cst); }
  bool empty() const { return inside() == 0; }
  int inside() const { return inside_.load(std::memory_order_seq_cst); }
  void open() { closed_.store(false, std::memory_order_seq_cst); }
  // In a fork child: its only thread is the one that forked, so no pass is in
  // progress there whatever the parent's count said.
  void reset_in_child() {
    inside_.store(0, std::memory_order_relaxed);
    closed_.store(false, std::memory_order_relaxed);
  }

 private:
  std::atomic<int> inside_{0};
  std::atomic<bool> closed_{false};
};

}  // namespace connleak
