#include "cli/report_files.h"

#include <dirent.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <set>

#include "cli/common.h"
#include "cli/journal_files.h"
#include "collector/report/format/report_json.h"
#include "collector/util/printable.h"

namespace connleak::cli {

namespace {

std::optional<long long> parse_number(const std::string& s) {
  if (s.empty() || s.size() > 18 || s.find_first_not_of("0123456789") != std::string::npos)
    return std::nullopt;
  return std::stoll(s);
}

bool is_directory(const std::string& path) {
  struct stat st {};
  return stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

std::vector<std::string> names_in(const std::string& dir, std::string* error) {
  std::vector<std::string> names;
  DIR* d = opendir(dir.c_str());
  if (!d) {
    *error = "cannot read directory " + dir + ": " + std::strerror(errno);
    return names;
  }
  while (dirent* e = readdir(d)) names.emplace_back(e->d_name);
  closedir(d);
  std::sort(names.begin(), names.end());
  return names;
}

}  // namespace

std::optional<ReportName> parse_report_name(const std::string& name) {
  const std::string prefix = "connleak.", suffix = ".json";
  if (name.size() <= prefix.size() + suffix.size() || name.compare(0, prefix.size(), prefix) != 0 ||
      name.compare(name.size() - suffix.size(), suffix.size(), suffix) != 0)
    return std::nullopt;
  std::string middle = name.substr(prefix.size(), name.size() - prefix.size() - suffix.size());
  // <pid>[.<n>][.<nsinode>-<starttime>]: the tag is what the shim adds when
  // the plain name was taken by another process with the same pid.
  std::vector<std::string> parts;
  for (std::size_t from = 0;;) {
    std::size_t dot = middle.find('.', from);
    parts.push_back(middle.substr(from, dot == std::string::npos ? std::string::npos : dot - from));
    if (dot == std::string::npos) break;
    from = dot + 1;
  }
  ReportName out;
  if (parts.size() > 1) {
    const std::string& last = parts.back();
    std::size_t dash = last.find('-');
    if (dash != std::string::npos) {
      if (!parse_number(last.substr(0, dash)) || !parse_number(last.substr(dash + 1)))
        return std::nullopt;
      out.tag = last;
      parts.pop_back();
    }
  }
  if (parts.size() > 2) return std::nullopt;
  auto pid = parse_number(parts[0]);
  if (!pid) return std::nullopt;
  out.pid = *pid;
  if (parts.size() == 2) {
    out.dump = parse_number(parts[1]);
    if (!out.dump) return std::nullopt;
  }
  return out;
}

std::optional<Report> read_report(const std::string& path, std::string* error) {
  std::string text;
  if (!read_file(path, &text, error, kMaxReportBytes)) {
    *error += "; skipping it";
    return std::nullopt;
  }
  try {
    // A report written by an older shim or another tool may carry raw
    // non-UTF-8 bytes (a Latin-1 argv): read them as U+FFFD, as the shim
    // writes them now, rather than rejecting the whole file.
    return report_from_json(nlohmann::json::parse(valid_utf8(text)));
  } catch (const std::exception& e) {
    // nlohmann's messages are one line and say where the JSON broke.
    *error = path + " is not a valid connleak report, skipping it: " + e.what();
  } catch (...) {
    *error = path + " is not a valid connleak report, skipping it";
  }
  return std::nullopt;
}

std::vector<std::string> report_files_in(const std::string& dir, std::string* error) {
  // Keyed by pid and tag: the same pid in two pid namespaces is two processes.
  std::map<std::string, std::string> exits;
  std::map<std::string, std::pair<long long, std::string>> latest_dump;
  for (const std::string& name : names_in(dir, error)) {
    auto parsed = parse_report_name(name);
    if (!parsed) continue;
    std::string key = std::to_string(parsed->pid) + "." + parsed->tag;
    if (!parsed->dump) {
      exits[key] = name;
    } else {
      auto& best = latest_dump[key];
      if (best.second.empty() || *parsed->dump > best.first) best = {*parsed->dump, name};
    }
  }
  std::vector<std::string> files;
  for (const auto& [pid, name] : exits) files.push_back(dir + "/" + name);
  for (const auto& [pid, dump] : latest_dump)
    if (!exits.count(pid)) files.push_back(dir + "/" + dump.second);
  std::sort(files.begin(), files.end());
  return files;
}

std::vector<Report> load_reports(const std::vector<std::string>& inputs) {
  std::vector<Report> reports;
  std::set<std::string> seen;
  auto load_one = [&](const std::string& path) {
    std::error_code ec;
    std::string canonical = std::filesystem::weakly_canonical(path, ec).string();
    if (!seen.insert(ec ? path : canonical).second) return;
    std::string error;
    if (auto r = read_report(path, &error))
      reports.push_back(std::move(*r));
    else
      print_warning(error);
  };
  for (const std::string& input : inputs) {
    if (!is_directory(input)) {
      load_one(input);
      continue;
    }
    std::string error;
    std::vector<std::string> files = report_files_in(input, &error);
    // Processes that died without their exit report left a journal instead.
    std::vector<Report> killed = error.empty() ? killed_reports_in(input) : std::vector<Report>{};
    if (!error.empty())
      print_warning(error + "; skipping it");
    else if (files.empty() && killed.empty())
      print_warning("no connleak.<pid>.json reports in " + input);
    for (const std::string& f : files) load_one(f);
    for (Report& r : killed) reports.push_back(std::move(r));
  }
  return reports;
}

std::map<std::string, FileStamp> exit_reports_in(const std::string& dir) {
  std::map<std::string, FileStamp> stamps;
  std::string ignored;
  for (const std::string& name : names_in(dir, &ignored)) {
    auto parsed = parse_report_name(name);
    if (!parsed || parsed->dump) continue;
    struct stat st {};
    if (stat((dir + "/" + name).c_str(), &st) == 0) stamps[name] = {st.st_ino, st.st_mtim};
  }
  return stamps;
}

std::vector<std::string> written_since(const std::string& dir,
                                       const std::map<std::string, FileStamp>& before) {
  std::vector<std::string> files;
  for (const auto& [name, stamp] : exit_reports_in(dir)) {
    auto it = before.find(name);
    bool same = it != before.end() && it->second.inode == stamp.inode &&
                it->second.mtime.tv_sec == stamp.mtime.tv_sec &&
                it->second.mtime.tv_nsec == stamp.mtime.tv_nsec;
    if (!same) files.push_back(dir + "/" + name);
  }
  return files;
}

}  // namespace connleak::cli
