#pragma once
// The one background thread of the shim. It does everything that must not run
// in a hook or a signal handler: watchdog rounds (threshold alerts), dumps
// asked for by the dump signal, and answers to `connleak dump PID` on an
// abstract unix socket. Started with the first connection, and only when one
// of those is enabled (Python 3.12+ warns at every fork() once a native thread
// exists); all signals blocked; never joined, so it never delays exit.
namespace connleak::shim {

void ensure_worker_thread();

enum class ExitReport { kWritten, kTimedOut, kNoThread };
// Asks the running worker thread to write the exit report and waits up to
// `timeout_ms` for it. Async-signal-safe (eventfd write, futex wait,
// clock_gettime): the _exit hook calls it from signal handlers.
ExitReport worker_write_exit_report(int timeout_ms);
// In a fork child (the thread does not exist there): fresh pipe and socket,
// started again with the child's next connection.
void worker_after_fork_child();

}  // namespace connleak::shim
