#include "cli/journal_files.h"

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <fstream>

#include "cli/common.h"
#include "cli/offline_symbolize.h"
#include "cli/report_files.h"
#include "collector/core/registry.h"
#include "collector/journal/journal_format.h"
#include "collector/report/report_builder.h"
#include "collector/util/text_util.h"
#include "collector/util/timeutil.h"

namespace connleak::cli {

std::vector<std::string> journal_files_in(const std::string& dir) {
  std::vector<std::string> files;
  DIR* d = opendir(dir.c_str());
  if (!d) return files;
  const std::string prefix = journal::kFilePrefix, suffix = journal::kFileSuffix;
  while (dirent* e = readdir(d)) {
    std::string name = e->d_name;
    if (name.size() > prefix.size() + suffix.size() &&
        name.compare(0, prefix.size(), prefix) == 0 &&
        name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0)
      files.push_back(dir + "/" + name);
  }
  closedir(d);
  std::sort(files.begin(), files.end());
  return files;
}

namespace {

std::uint64_t own_pidns_inode() {
  struct stat st {};
  return stat("/proc/self/ns/pid", &st) == 0 ? st.st_ino : 0;
}

// Field 22 of /proc/<pid>/stat; nullopt when there is no such process (or only its zombie).
std::optional<std::uint64_t> start_ticks_of(std::int64_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string stat;
  if (!in || !std::getline(in, stat)) return std::nullopt;
  std::size_t p = stat.rfind(')');
  // Field 3, the state: a zombie (killed, not yet reaped by its parent) is gone.
  if (p != std::string::npos && p + 2 < stat.size() && (stat[p + 2] == 'Z' || stat[p + 2] == 'X'))
    return std::nullopt;
  for (int field = 2; p != std::string::npos && field < 22; ++field) p = stat.find(' ', p + 1);
  if (p == std::string::npos) return std::nullopt;
  return std::strtoull(stat.c_str() + p + 1, nullptr, 10);
}

// A code this build does not know (a newer shim's journal) is shown as "unknown".
Named<ConnLibrary> library_of_code(std::uint8_t code) {
  if (code > static_cast<std::uint8_t>(Library::kSocket)) return Named<ConnLibrary>("unknown");
  return library_of(static_cast<Library>(code));
}

std::optional<std::string> protocol_of(std::uint8_t code) {
  if (code == 1) return "postgresql";
  if (code == 2) return "mysql";
  return std::nullopt;
}

// An exit report of this process (its pid, written after it started): the
// process died between writing it and removing its journal.
bool exit_report_after(const std::string& dir, const journal::JournalContents& j) {
  const std::string tag = std::to_string(j.pidns_inode) + "-" + std::to_string(j.start_ticks);
  DIR* d = opendir(dir.c_str());
  if (!d) return false;
  bool found = false;
  while (dirent* e = readdir(d)) {
    auto name = parse_report_name(e->d_name);
    if (!name || name->dump || name->pid != j.pid || (!name->tag.empty() && name->tag != tag))
      continue;
    struct stat st {};
    if (stat((dir + "/" + e->d_name).c_str(), &st) != 0) continue;
    std::int64_t mtime_ns = st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec;
    if (mtime_ns >= j.started_real_ns) found = true;
  }
  closedir(d);
  return found;
}

}  // namespace

Liveness process_liveness(const journal::JournalContents& j) {
  if (j.pidns_inode != own_pidns_inode()) return Liveness::kUnknown;
  auto start = start_ticks_of(j.pid);
  if (!start) return Liveness::kGone;
  return *start == j.start_ticks ? Liveness::kAlive : Liveness::kGone;
}

Report killed_report(const journal::JournalContents& j, const std::string& path, bool alive) {
  Report r;
  r.version = CONNLEAK_VERSION;
  r.pid = j.pid;
  r.ppid = j.ppid;
  r.argv = j.argv;
  r.trigger = alive ? Trigger::kRequest : Trigger::kKilled;
  r.generated_at = iso8601_utc(now().real_ns);
  OfflineSymbolizer symbolizer(j.modules);
  auto stacks = [&](std::uint32_t native, std::uint32_t python) {
    Stacks s;
    if (auto it = j.native_stacks.find(native); it != j.native_stacks.end())
      for (std::uint64_t a : it->second) s.native.push_back(symbolizer.resolve(a));
    if (python) {
      s.script.emplace();
      s.language = j.script_language;
      if (auto it = j.python_stacks.find(python); it != j.python_stacks.end())
        for (const auto& f : it->second) {
          Frame frame;
          frame.function = f.function;
          frame.file = f.file;
          frame.line = f.line;
          s.script->push_back(std::move(frame));
        }
    }
    return s;
  };
  // The last thing the process journaled: its death came later, so ages are
  // lower bounds.
  std::int64_t end_ns = std::max(j.last_real_ns, j.started_real_ns);
  for (const journal::JournalEntry& e : j.open) {
    double age = std::max<double>(0, static_cast<double>(end_ns - e.opened_real_ns) / 1e9);
    if (e.checkout) {
      Checkout c;
      c.id = e.record_id;
      c.pool = e.handle;
      if (e.link) c.connection = e.link;
      c.status = alive ? CheckoutStatus::kOpen : CheckoutStatus::kLeaked;
      c.checked_out_at = iso8601_utc(e.opened_real_ns);
      c.held_seconds = age;
      c.thread = e.thread;
      c.acquired = stacks(e.stack, e.py_stack);
      r.checkouts.push_back(std::move(c));
      ++r.summary.checkouts.taken;
      ++(alive ? r.summary.checkouts.open : r.summary.checkouts.leaked);
      continue;
    }
    Connection c;
    c.id = e.record_id;
    c.library = library_of_code(e.library);
    c.handle = e.library == static_cast<std::uint8_t>(Library::kSocket)
                   ? "fd:" + std::to_string(e.fd)
                   : hex(e.handle);
    c.target = e.target;
    c.status = alive ? ConnStatus::kOpen : ConnStatus::kLeaked;
    c.state = "unknown";  // read from the file: nobody asked the library
    c.age_seconds = age;
    c.opened_at = iso8601_utc(e.opened_real_ns);
    c.thread = e.thread;
    c.protocol = protocol_of(e.protocol);
    c.acquired = stacks(e.stack, e.py_stack);
    r.connections.push_back(std::move(c));
  }
  std::sort(r.connections.begin(), r.connections.end(),
            [](const Connection& a, const Connection& b) { return a.id < b.id; });
  r.summary.opened = j.opened;
  r.summary.closed = j.closed;
  r.summary.open = r.connections.size();
  if (!alive) r.summary.leaked = r.connections.size();
  if (alive)
    r.notes.push_back("read from the journal of pid " + std::to_string(j.pid) + " (" + path +
                      ") without its cooperation: states, statements and alerts are not in it");
  else
    r.notes.push_back("pid " + std::to_string(j.pid) +
                      " ended without writing its exit report (killed: SIGKILL, the OOM killer, "
                      "abort() or a fatal signal); read from its journal " +
                      path);
  for (const std::string& n : j.notes) r.notes.push_back(n);
  for (const std::string& n : symbolizer.notes()) r.notes.push_back(n);
  return r;
}

std::string journal_of_process(long pid, std::string* error) {
  std::ifstream maps("/proc/" + std::to_string(pid) + "/maps");
  if (!maps) {
    *error = "cannot read /proc/" + std::to_string(pid) + "/maps: no such process, or not yours";
    return "";
  }
  const std::string name = "/" + std::string(journal::kFilePrefix) + std::to_string(pid) + ".";
  std::string line;
  while (std::getline(maps, line)) {
    std::size_t slash = line.find('/');
    if (slash == std::string::npos) continue;
    std::string path = line.substr(slash);
    if (path.size() > std::strlen(journal::kFileSuffix) &&
        path.compare(path.size() - std::strlen(journal::kFileSuffix), std::string::npos,
                     journal::kFileSuffix) == 0 &&
        path.find(name) != std::string::npos)
      return path;
  }
  *error = "process " + std::to_string(pid) +
           " has no journal mapped (not under the shim, no report_dir, journal=0, or no "
           "connection opened yet)";
  return "";
}

std::vector<Report> killed_reports_in(const std::string& dir, std::int64_t started_after_ns) {
  std::vector<Report> reports;
  for (const std::string& path : journal_files_in(dir)) {
    std::string error;
    auto j = journal::read_journal(path, &error);
    if (!j) {
      print_warning(error);
      continue;
    }
    if (j->exit_reported) continue;  // keep_journal=1: its exit report says it all
    if (j->started_real_ns < started_after_ns) continue;
    if (exit_report_after(dir, *j)) continue;  // killed after its report, before the unlink
    switch (process_liveness(*j)) {
      case Liveness::kAlive:
        continue;  // still running: its journal is work in progress
      case Liveness::kUnknown:
        print_warning(path + " comes from another pid namespace: cannot tell whether pid " +
                      std::to_string(j->pid) + " is still running; skipping it");
        continue;
      case Liveness::kGone:
        reports.push_back(killed_report(*j, path));
        break;
    }
  }
  return reports;
}

}  // namespace connleak::cli
