#include "collector/util/logger.h"

#include <pthread.h>
#include <signal.h>
#include <spdlog/details/null_mutex.h>
#include <spdlog/logger.h>
#include <spdlog/sinks/base_sink.h>
#include <unistd.h>

#include <cerrno>
#include <memory>
#include <string>

#include "collector/core/fork_safe_static.h"

namespace connleak {

namespace {

void write_all(int fd, const char* data, size_t len) {
  write_all_no_sigpipe(fd, data, len);
}

// Writes the message payload only, with one write(2) per line. No pattern
// formatter (its cached time state needs a mutex) and no stdio buffer (the host
// may have closed or redirected FILE* stderr); a line below PIPE_BUF is atomic,
// so lines from several threads do not interleave. null_mutex: nothing shared to
// guard, and no lock that a fork could leave held.
class FdSink final : public spdlog::sinks::base_sink<spdlog::details::null_mutex> {
 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    std::string line(msg.payload.data(), msg.payload.size());
    line.push_back('\n');
    write_all(STDERR_FILENO, line.data(), line.size());
  }
  void flush_() override {}
};

}  // namespace

void write_all_no_sigpipe(int fd, const char* data, std::size_t len) noexcept {
  const int saved_errno = errno;
  sigset_t pipe_only, old;
  sigemptyset(&pipe_only);
  sigaddset(&pipe_only, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &pipe_only, &old);
  // A SIGPIPE already pending (the program's own, or sent by someone) is left
  // for the program; only the one our write adds is taken away.
  sigset_t pending;
  sigemptyset(&pending);
  sigpending(&pending);
  const bool was_pending = sigismember(&pending, SIGPIPE) == 1;
  bool broken = false;
  while (len > 0) {
    ssize_t n = ::write(fd, data, len);
    if (n < 0) {
      if (errno == EINTR) continue;
      broken = errno == EPIPE;
      break;  // stderr closed or broken: nothing better to do, never fail the host
    }
    data += n;
    len -= static_cast<size_t>(n);
  }
  if (broken && !was_pending) {
    timespec zero{0, 0};
    while (sigtimedwait(&pipe_only, nullptr, &zero) < 0 && errno == EINTR) {
    }
  }
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  errno = saved_errno;
}

spdlog::logger& log() {
  // Leaked on purpose: must outlive every static destructor (exit reports run late).
  return fork_safe_static(
      [] { return new spdlog::logger("connleak", std::make_shared<FdSink>()); });
}

void raw_line(std::string_view line) {
  std::string buf(line);
  buf.push_back('\n');
  write_all(STDERR_FILENO, buf.data(), buf.size());
}

void log_block(std::string_view text) {
  auto& logger = log();
  while (!text.empty()) {
    size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    logger.info("{}", line);
    if (nl == std::string_view::npos) break;
    text.remove_prefix(nl + 1);
  }
}

}  // namespace connleak
