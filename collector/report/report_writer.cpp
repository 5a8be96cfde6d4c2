#include "collector/report/report_writer.h"

#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <mutex>

#include "collector/report/format/report_json.h"
#include "collector/report/format/report_text.h"
#include "collector/report/metrics_file.h"
#include "collector/util/logger.h"

namespace connleak {

bool ensure_directory(const std::string& dir, std::string* error) {
  if (dir.empty()) {
    *error = "empty directory name";
    return false;
  }
  std::string partial;
  std::size_t pos = 0;
  while (pos != std::string::npos) {
    pos = dir.find('/', pos + 1);
    partial = dir.substr(0, pos);
    if (partial.empty()) continue;
    if (mkdir(partial.c_str(), 0700) != 0 && errno != EEXIST) {
      *error = "cannot create " + partial + ": " + std::strerror(errno);
      return false;
    }
  }
  struct stat st {};
  if (stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    *error = dir + " is not a directory";
    return false;
  }
  return true;
}

bool trusted_directory(const std::string& dir, std::string* error) {
  struct stat st {};
  if (stat(dir.c_str(), &st) != 0) {
    *error = "cannot examine " + dir + ": " + std::strerror(errno);
    return false;
  }
  // As ssh does for its files: another user who owns the directory, or may
  // rename files in it, could replace a report or read the next one.
  uid_t me = geteuid();
  if (st.st_uid != me && st.st_uid != 0) {
    *error = dir + " is owned by uid " + std::to_string(st.st_uid) + ", neither you nor root";
    return false;
  }
  if ((st.st_mode & (S_IWGRP | S_IWOTH)) && !(st.st_mode & S_ISVTX)) {
    *error = dir + " is writable by other users and has no sticky bit";
    return false;
  }
  return true;
}

std::string process_tag() {
  static std::atomic<pid_t> tag_pid{0};
  static char tag[64];
  pid_t pid = getpid();
  if (tag_pid.load(std::memory_order_acquire) == pid) return tag;
  struct stat ns {};
  unsigned long long ino = stat("/proc/self/ns/pid", &ns) == 0 ? ns.st_ino : 0;
  unsigned long long start = 0;
  int fd = open("/proc/self/stat", O_RDONLY | O_CLOEXEC);
  if (fd >= 0) {
    char buf[1024];
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n > 0) {
      buf[n] = '\0';
      // Field 22, counted after the command name's closing parenthesis (the
      // name itself may hold spaces and parentheses).
      const char* p = strrchr(buf, ')');
      for (int field = 2; p && field < 22; ++field) p = strchr(p + 1, ' ');
      if (p) start = strtoull(p + 1, nullptr, 10);
    }
  }
  snprintf(tag, sizeof tag, "%llu-%llu", ino, start);
  tag_pid.store(pid, std::memory_order_release);
  return tag;
}

std::string tagged_name(const std::string& name, const std::string& tag) {
  const std::string suffix = ".json";
  if (name.size() > suffix.size() &&
      name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0)
    return name.substr(0, name.size() - suffix.size()) + "." + tag + suffix;
  return name + "." + tag;
}

namespace {

// rename() that never replaces an existing file: false with errno EEXIST when
// `to` exists. Falls back to link()+unlink() where the file system lacks
// RENAME_NOREPLACE.
bool rename_noreplace(const std::string& from, const std::string& to) {
  if (renameat2(AT_FDCWD, from.c_str(), AT_FDCWD, to.c_str(), RENAME_NOREPLACE) == 0) return true;
  if (errno != EINVAL && errno != ENOSYS && errno != ENOTSUP) return false;
  if (link(from.c_str(), to.c_str()) != 0) return false;
  unlink(from.c_str());
  return true;
}

}  // namespace

bool write_file_atomically(const std::string& dir, const std::string& name,
                           std::string_view content, std::string* error, std::string* written) {
  std::string final_path = dir + "/" + name;
  // The temp name carries the pid namespace and the start time: the same pid
  // in another container sharing this directory has another name, so no
  // writer ever replaces or unlinks another's temp file.
  const std::string tag = process_tag();
  std::string temp_path = dir + "/." + name + ".tmp." + tag;
  // O_EXCL|O_NOFOLLOW: a planted symlink or file at the temp name is refused,
  // never written through.
  int fd = open(temp_path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0 && errno == EEXIST) {
    unlink(temp_path.c_str());  // our own leftover: only this process uses this name
    fd = open(temp_path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  }
  if (fd < 0) {
    *error = "cannot create " + temp_path + ": " + std::strerror(errno);
    return false;
  }
  const char* data = content.data();
  std::size_t left = content.size();
  while (left > 0) {
    ssize_t n = write(fd, data, left);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      *error = "cannot write " + temp_path + ": " + std::strerror(errno);
      close(fd);
      unlink(temp_path.c_str());
      return false;
    }
    data += n;
    left -= static_cast<std::size_t>(n);
  }
  close(fd);
  // The contract's name when it is free. Taken means another process wrote it
  // (the same pid in another pid namespace, or an earlier process with this
  // pid): keep theirs and add our tag, which is ours alone.
  if (rename_noreplace(temp_path, final_path)) {
    if (written) *written = final_path;
    return true;
  }
  if (errno == EEXIST) {
    final_path = dir + "/" + tagged_name(name, tag);
    if (rename(temp_path.c_str(), final_path.c_str()) == 0) {
      if (written) *written = final_path;
      return true;
    }
  }
  *error = "cannot rename to " + final_path + ": " + std::strerror(errno);
  unlink(temp_path.c_str());
  return false;
}

const Suppressions* configured_suppressions(const Options& options) {
  static std::once_flag once;
  static const Suppressions* loaded = nullptr;
  std::call_once(once, [&] {
    if (options.suppressions.empty()) return;
    std::string error;
    std::optional<Suppressions> s = Suppressions::load(options.suppressions, &error);
    if (!s) {
      log().warn("connleak: ignoring option 'suppressions={}': {}", options.suppressions, error);
      return;
    }
    loaded = new Suppressions(std::move(*s));  // never destroyed: used by the exit report
  });
  return loaded;
}

std::optional<CollectedReport> collect_report(const Options& options, const Named<Trigger>& trigger,
                                              const StateProbe& probe, bool skip_untouched,
                                              const ReportExtras* extras) {
  // Neither table was ever built: nothing was seen (the common exit of a
  // preloaded shell or compiler); building them only to find them empty would
  // be most of such a process's added cost.
  if (skip_untouched && !Registry::instance_built() && !CheckoutTable::instance_built())
    return std::nullopt;
  Snapshot snap = Registry::instance().snapshot(mono_now_ns() + 500'000'000);
  CheckoutSnapshot checkouts = CheckoutTable::instance().snapshot(mono_now_ns() + 500'000'000);
  if (extras && extras->pool) {
    std::erase_if(checkouts.open, [&](const CheckoutRecord& c) { return c.pool != *extras->pool; });
    checkouts.ended.clear();
  }
  if (extras && extras->holder_stack)
    for (CheckoutRecord& c : checkouts.open)
      if (StackId now = extras->holder_stack(c)) c.holder_py_stack = now;
  const Counters& c = snap.counters;
  bool own_open = std::any_of(snap.open.begin(), snap.open.end(),
                              [](const ConnRecord& r) { return !r.inherited; });
  bool touched = c.opened || c.unknown_closes || c.double_closes || own_open ||
                 !snap.flagged.empty() || !snap.finalized.empty() || checkouts.counters.taken ||
                 !checkouts.pools.empty();
  // A process that never saw a connection (a shell, git, a compiler under
  // `connleak run`) stays silent and writes no file, like LeakSanitizer.
  if (!touched && skip_untouched) return std::nullopt;
  Symbolizer symbolizer;
  CollectedReport out{build_report(snap, trigger, current_process(), symbolizer, probe, &checkouts),
                      ""};
  if (extras) {
    out.report.snapshot_pool = extras->pool;
    out.report.waited_seconds = extras->waited_seconds;
    out.report.refusal = extras->refusal;
  }
  if (!options.report_initialized) drop_initialized_only(out.report);
  if (const Suppressions* configured = configured_suppressions(options)) {
    Suppressions counted = *configured;  // hit counts for this report only
    if (apply_suppressions(out.report, counted) > 0) {
      out.suppressions_table = suppressions_used_table(counted);
      for (const Suppression& s : counted.entries())
        if (s.hits) out.report.suppressions_used.push_back({s.pattern, s.origin, s.hits});
    }
  }
  return out;
}

bool write_report_file(const Options& options, const Report& report, const std::string& file_name,
                       std::string* written, std::string* error) {
  if (options.report_dir.empty()) {
    *error = "report_dir is not set";
    return false;
  }
  if (!ensure_directory(options.report_dir, error)) return false;
  if (!trusted_directory(options.report_dir, error)) return false;
  return write_file_atomically(options.report_dir, file_name, to_json_text(report), error, written);
}

void output_report(const Options& options, const CollectedReport& collected,
                   const std::string& file_name) {
  const Report& report = collected.report;
  if (!options.report_dir.empty()) {
    std::string error;
    static std::atomic<bool> said_untrusted{false};
    if (!ensure_directory(options.report_dir, &error)) {
      log().warn("connleak: could not write the JSON report: {}", error);
    } else if (!trusted_directory(options.report_dir, &error)) {
      if (!said_untrusted.exchange(true))
        log().warn("connleak: not writing JSON reports to report_dir: {}", error);
    } else if (!write_file_atomically(options.report_dir, file_name, to_json_text(report),
                                      &error)) {
      log().warn("connleak: could not write the JSON report: {}", error);
    }
  }
  // The metrics file follows every report: the exit report's leaks are its last word.
  if (!options.metrics_file.empty()) {
    std::string error;
    static std::atomic<bool> said_metrics{false};  // rewritten every interval: say it once
    if (!write_metrics_file(options.metrics_file, report, &error) && !said_metrics.exchange(true))
      log().warn("connleak: could not write metrics_file: {}", error);
  }
  if (!options.print_report && report.trigger == Trigger::kExit) return;
  TextOptions text;
  text.clean_line = !options.quiet && options.verbosity >= 1;
  text.before_summary = collected.suppressions_table;
  std::string rendered = render_text(report, text);
  if (!rendered.empty()) log_block(rendered);
}

bool emit_report(const Options& options, const Named<Trigger>& trigger,
                 const std::string& file_name, const StateProbe& probe,
                 const ReportExtras* extras) {
  std::optional<CollectedReport> report =
      collect_report(options, trigger, probe, trigger == Trigger::kExit, extras);
  if (!report) return false;
  output_report(options, *report, file_name);
  return true;
}

}  // namespace connleak
