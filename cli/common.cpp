#include "cli/common.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

namespace connleak::cli {

void write_stderr(const std::string& text) {
  const char* p = text.data();
  std::size_t left = text.size();
  while (left > 0) {
    ssize_t n = write(STDERR_FILENO, p, left);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    p += n;
    left -= static_cast<std::size_t>(n);
  }
}

void print_error(const std::string& message) {
  write_stderr("connleak: " + message + "\n");
}
void print_warning(const std::string& message) {
  write_stderr("connleak: warning: " + message + "\n");
}

bool read_file(const std::string& path, std::string* content, std::string* error) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    *error = "cannot read " + path + ": " + std::strerror(errno);
    return false;
  }
  content->clear();
  char buf[65536];
  for (;;) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      *error = "cannot read " + path + ": " + std::strerror(errno);  // EISDIR lands here
      close(fd);
      return false;
    }
    if (n == 0) break;
    content->append(buf, static_cast<std::size_t>(n));
  }
  close(fd);
  return true;
}

void write_output(const std::string& path, const std::string& content) {
  if (path.empty() || path == "-") {
    std::fwrite(content.data(), 1, content.size(), stdout);
    if (std::fflush(stdout) != 0)
      throw Failure(std::string("cannot write to stdout: ") + std::strerror(errno));
    return;
  }
  std::FILE* f = std::fopen(path.c_str(), "w");
  if (!f) throw Failure("cannot write " + path + ": " + std::strerror(errno));
  bool ok = std::fwrite(content.data(), 1, content.size(), f) == content.size();
  ok = (std::fclose(f) == 0) && ok;
  if (!ok) throw Failure("cannot write " + path + ": " + std::strerror(errno));
}

FailOn parse_fail_on(const std::string& text) {
  if (text == "flagged") return FailOn::flagged;
  if (text == "never") return FailOn::never;
  return FailOn::leaked;
}

bool has_failures(const Report& report, FailOn fail_on) {
  if (fail_on == FailOn::never) return false;
  for (const Connection& c : report.connections) {
    if (c.status == "leaked") return true;
    if (fail_on == FailOn::flagged && !c.alerts.empty()) return true;
  }
  // Pool checkouts (extension): one never returned, or reclaimed by the
  // garbage collector, is a leak; a pooled idle connection is not.
  for (const Checkout& c : report.checkouts) {
    if (c.status == "leaked" || c.status == "reclaimed") return true;
    if (fail_on == FailOn::flagged && !c.alerts.empty()) return true;
  }
  return false;
}

}  // namespace connleak::cli
