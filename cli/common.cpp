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
void print_note(const std::string& message) {
  write_stderr("connleak: " + message + "\n");
}

bool read_file(const std::string& path, std::string* content, std::string* error,
               std::size_t max_bytes) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) {
    *error = "cannot read " + path + ": " + std::strerror(errno);
    return false;
  }
  content->clear();
  char buf[65536];
  for (;;) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) {
      *error = "cannot read " + path + ": not a regular file (nothing to read yet)";
      close(fd);
      return false;
    }
    if (n < 0) {
      *error = "cannot read " + path + ": " + std::strerror(errno);  // EISDIR lands here
      close(fd);
      return false;
    }
    if (n == 0) break;
    content->append(buf, static_cast<std::size_t>(n));
    if (content->size() > max_bytes) {
      *error = path + " is larger than " + std::to_string(max_bytes >> 20) +
               " MiB, connleak's limit for this file";
      close(fd);
      return false;
    }
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
  // A temp name beside it, then rename: a reader (a CI upload step) never sees
  // half a file, and a symlink planted at `path` is replaced, never written
  // through (O_EXCL|O_NOFOLLOW on the temp name). Mode 0600, like the shim's
  // report files: reports name hosts, users and code.
  std::string::size_type slash = path.rfind('/');
  std::string dir = slash == std::string::npos ? "" : path.substr(0, slash + 1);
  std::string base = slash == std::string::npos ? path : path.substr(slash + 1);
  std::string temp = dir + "." + base + ".tmp." + std::to_string(getpid());
  int fd = open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) throw Failure("cannot write " + path + ": " + temp + ": " + std::strerror(errno));
  const char* p = content.data();
  std::size_t left = content.size();
  while (left > 0) {
    ssize_t n = write(fd, p, left);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      int err = n < 0 ? errno : EIO;
      close(fd);
      unlink(temp.c_str());
      throw Failure("cannot write " + path + ": " + std::strerror(err));
    }
    p += n;
    left -= static_cast<std::size_t>(n);
  }
  if (close(fd) != 0 || rename(temp.c_str(), path.c_str()) != 0) {
    int err = errno;
    unlink(temp.c_str());
    throw Failure("cannot write " + path + ": " + std::strerror(err));
  }
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
