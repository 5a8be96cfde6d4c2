#include "collector/report/metrics_file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

#include <cstring>
#include <mutex>

#include "collector/core/fork_mutex.h"
#include "collector/report/format/report_prometheus.h"

namespace connleak {

namespace {

// The worker thread's periodic write may be collecting while the exit report
// is written: the exit's file must be the last one, never overwritten by an
// older live view.
constinit ForkMutex g_metrics_mutex;
constinit ForkMutex g_collect_mutex;
bool g_exit_written = false;

}  // namespace

ForkMutex& report_collect_mutex() {
  return g_collect_mutex;
}

bool write_metrics_file(const std::string& path, const Report& report, std::string* error) {
  std::string text = render_prometheus(report);
  std::lock_guard<ForkMutex> lock(g_metrics_mutex);
  if (g_exit_written) return true;
  if (report.trigger == Trigger::kExit) g_exit_written = true;
  // node_exporter reads only *.prom and skips dot files: the temporary is one.
  std::size_t slash = path.rfind('/');
  std::string dir = slash == std::string::npos ? "" : path.substr(0, slash + 1);
  std::string base = slash == std::string::npos ? path : path.substr(slash + 1);
  std::string tmp = dir + "." + base + ".tmp." + std::to_string(getpid());
  unlink(tmp.c_str());  // left by a process of ours killed mid-write, same pid
  int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
  if (fd < 0) {
    *error = "cannot create " + tmp + ": " + std::strerror(errno);
    return false;
  }
  std::size_t done = 0;
  while (done < text.size()) {
    ssize_t n = write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      *error = "cannot write " + tmp + ": " + std::strerror(errno);
      close(fd);
      unlink(tmp.c_str());
      return false;
    }
    done += static_cast<std::size_t>(n);
  }
  close(fd);
  if (rename(tmp.c_str(), path.c_str()) != 0) {
    *error = "cannot rename " + tmp + " to " + path + ": " + std::strerror(errno);
    unlink(tmp.c_str());
    return false;
  }
  return true;
}

}  // namespace connleak
