#pragma once
// Finding and reading report files: connleak.<pid>.json (exit report) and
// connleak.<pid>.<n>.json (n-th dump), as the shim names them.
#include <sys/types.h>

#include <ctime>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "collector/report/report_model.h"

namespace connleak::cli {

// Parses a report file name; nullopt for anything else (temp files, other tools' files).
struct ReportName {
  long long pid = 0;
  std::optional<long long> dump;  // n of connleak.<pid>.<n>.json
  // "<nsinode>-<starttime>" of connleak.<pid>[.<n>].<tag>.json, the name the
  // shim uses when connleak.<pid>[.<n>].json was taken by another process
  // with the same pid (another pid namespace); empty otherwise.
  std::string tag;
};
std::optional<ReportName> parse_report_name(const std::string& name);

// Reads and parses one report; on failure *error is one line naming the file.
std::optional<Report> read_report(const std::string& path, std::string* error);

// The report files of a directory, sorted by name: every exit report, and for
// a pid without one its latest dump (an exit report supersedes the dumps of
// the same process; counting both would count its connections twice).
std::vector<std::string> report_files_in(const std::string& dir, std::string* error);

// Reads FILE_OR_DIR arguments: files as given, directories through
// report_files_in. Each unreadable or malformed input is one warning on stderr
// and is skipped; the same file named twice is read once.
std::vector<Report> load_reports(const std::vector<std::string>& inputs);

// Identity of the exit reports in a directory, to tell which ones a run wrote
// (a file rewritten by rename gets a new inode).
struct FileStamp {
  ino_t inode = 0;
  timespec mtime{};
};
std::map<std::string, FileStamp> exit_reports_in(const std::string& dir);
std::vector<std::string> written_since(const std::string& dir,
                                       const std::map<std::string, FileStamp>& before);

}  // namespace connleak::cli
