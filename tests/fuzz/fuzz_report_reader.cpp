// The reader behind `connleak report`: any bytes in a report file, and the
// whole command's pipeline (read, merge with itself, suppress, render in all
// four formats, judge) must neither crash nor hang; a rejected file is one
// warning line naming the file. The input goes through a real file so the
// code under test is exactly read_report(), whatever it does to read.
#include <sys/mman.h>
#include <unistd.h>

#include <string>

#include "cli/common.h"
#include "cli/output.h"
#include "cli/report_files.h"
#include "collector/policy/suppressions.h"
#include "collector/report/report_merge.h"
#include "tests/fuzz/fuzz_input.h"

using namespace connleak;

namespace {

// One memory file per process, rewritten for each input.
const std::string& report_path() {
  static const std::string path = [] {
    const int fd = memfd_create("connleak.1.json", 0);
    if (fd < 0) fuzz::fail("memfd_create", "", __FILE__, __LINE__);
    return "/proc/self/fd/" + std::to_string(fd);
  }();
  return path;
}

void write_input(const std::uint8_t* data, std::size_t size) {
  const int fd = std::stoi(report_path().substr(std::string("/proc/self/fd/").size()));
  if (ftruncate(fd, 0) != 0) fuzz::fail("ftruncate", "", __FILE__, __LINE__);
  std::size_t done = 0;
  while (done < size) {
    const ssize_t n = pwrite(fd, data + done, size - done, static_cast<off_t>(done));
    if (n <= 0) fuzz::fail("pwrite", "", __FILE__, __LINE__);
    done += static_cast<std::size_t>(n);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  write_input(data, size);
  std::string error;
  std::optional<Report> report = cli::read_report(report_path(), &error);
  if (!report) {
    FUZZ_CHECK(error.find(report_path()) != std::string::npos, error);
    FUZZ_CHECK(error.find('\n') == std::string::npos, error);
    return 0;
  }
  // What `connleak report DIR` does with two processes' reports.
  Report second = *report;
  second.pid = report->pid + 1;
  Report merged = merge_reports({*report, second});
  std::optional<Suppressions> suppressions =
      Suppressions::parse("leak:main\n", "fuzz.supp", &error);
  apply_all_suppressions(merged, suppressions);
  cli::RenderOptions options;
  options.suppressions = suppressions ? &*suppressions : nullptr;
  options.source_root = "/src";
  for (cli::Format f :
       {cli::Format::text, cli::Format::json, cli::Format::sarif, cli::Format::junit}) {
    // A throw here ends `connleak report` with a C++ exception, not one line.
    try {
      cli::render(merged, f, options);
    } catch (const std::exception& e) {
      FUZZ_CHECK(!"render threw", e.what());
    }
  }
  cli::has_failures(merged, cli::FailOn::flagged);
  return 0;
}
