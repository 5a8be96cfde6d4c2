#include "collector/report_writer.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <mutex>
#include <cstring>

#include "collector/logger.h"
#include "collector/report_json.h"
#include "collector/report_text.h"

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
  struct stat st{};
  if (stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    *error = dir + " is not a directory";
    return false;
  }
  return true;
}

bool write_file_atomically(const std::string& dir, const std::string& name, std::string_view content,
                           std::string* error) {
  std::string final_path = dir + "/" + name;
  std::string temp_path = dir + "/." + name + ".tmp." + std::to_string(getpid());
  // O_EXCL|O_NOFOLLOW: a planted symlink or file at the temp name is refused,
  // never written through. rename() then replaces the final name itself (a
  // symlink there is replaced, not followed).
  int fd = open(temp_path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0 && errno == EEXIST) {
    unlink(temp_path.c_str());  // our own leftover from an earlier dump in this pid
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
  if (rename(temp_path.c_str(), final_path.c_str()) != 0) {
    *error = "cannot rename to " + final_path + ": " + std::strerror(errno);
    unlink(temp_path.c_str());
    return false;
  }
  return true;
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

std::optional<CollectedReport> collect_report(const Options& options, const std::string& trigger,
                                              const StateProbe& probe, bool skip_untouched,
                                              const ReportExtras* extras) {
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
  bool touched = c.opened || c.unknown_closes || c.double_closes || own_open || !snap.flagged.empty() ||
                 !snap.finalized.empty() || checkouts.counters.taken || !checkouts.pools.empty();
  // A process that never saw a connection (a shell, git, a compiler under
  // `connleak run`) stays silent and writes no file, like LeakSanitizer.
  if (!touched && skip_untouched) return std::nullopt;
  Symbolizer symbolizer;
  CollectedReport out{build_report(snap, trigger, current_process(), symbolizer, probe, &checkouts), ""};
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

void output_report(const Options& options, const CollectedReport& collected, const std::string& file_name) {
  const Report& report = collected.report;
  if (!options.report_dir.empty()) {
    std::string error;
    if (!ensure_directory(options.report_dir, &error) ||
        !write_file_atomically(options.report_dir, file_name, to_json_text(report), &error)) {
      log().warn("connleak: could not write the JSON report: {}", error);
    }
  }
  if (!options.print_report && report.trigger == "exit") return;
  TextOptions text;
  text.clean_line = !options.quiet && options.verbosity >= 1;
  text.before_summary = collected.suppressions_table;
  std::string rendered = render_text(report, text);
  if (!rendered.empty()) log_block(rendered);
}

bool emit_report(const Options& options, const std::string& trigger, const std::string& file_name,
                 const StateProbe& probe, const ReportExtras* extras) {
  std::optional<CollectedReport> report = collect_report(options, trigger, probe, trigger == "exit", extras);
  if (!report) return false;
  output_report(options, *report, file_name);
  return true;
}

}  // namespace connleak
