// `connleak report` inputs: files and directories, bad files skipped with a
// warning (never a crash), dumps vs exit reports, output files, exit codes.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "tests/cli/harness.h"

using namespace cli_test;
using nlohmann::json;

namespace {

std::string input(const std::string& name) {
  return read_file(golden("inputs/" + name));
}

json summary_of(const Result& r) {
  return json::parse(r.out)["summary"];
}

}  // namespace

TEST(ReportInputs, MalformedFilesAreNamedAndSkipped) {
  TempDir dir;
  write_file(dir.file("connleak.101.json"), input("connleak.101.json"));
  write_file(dir.file("connleak.200.json"),
             "{\"tool\": \"connleak\", \"pid\": 200, \"summ");  // truncated
  write_file(dir.file("connleak.201.json"), "{\"tool\": \"something-else\"}");
  write_file(dir.file("connleak.202.json"),
             "{\"tool\": \"connleak\", \"summary\": {}, \"connections\": 5}");
  write_file(dir.file("connleak.203.json"), "");
  Result r = connleak({"report", "--format", "json", dir.path()});
  EXPECT_EQ(r.exit_code, 23) << describe(r);  // 101's leaks are still reported
  EXPECT_EQ(summary_of(r)["opened"], 10);
  std::vector<std::string> warnings = lines(r.err);
  ASSERT_EQ(warnings.size(), 4u) << r.err;
  for (const char* bad :
       {"connleak.200.json", "connleak.201.json", "connleak.202.json", "connleak.203.json"}) {
    bool named = false;
    for (const std::string& w : warnings)
      if (contains(w, bad) && w.rfind("connleak: warning: ", 0) == 0 && contains(w, "skipping it"))
        named = true;
    EXPECT_TRUE(named) << bad << "\n" << r.err;
  }
}

TEST(ReportInputs, UnreadableFileIsAWarning) {
  Result r =
      connleak({"report", "/nonexistent/connleak.1.json", golden("inputs/connleak.103.json")});
  EXPECT_EQ(r.exit_code, 23) << describe(r);
  EXPECT_EQ(r.err,
            "connleak: warning: cannot read /nonexistent/connleak.1.json: No such file or "
            "directory; skipping it\n");
}

TEST(ReportInputs, NothingReadableIsExit2) {
  TempDir dir;
  write_file(dir.file("connleak.1.json"), "not json");
  Result r = connleak({"report", dir.file("connleak.1.json"), "/nonexistent"});
  EXPECT_EQ(r.exit_code, 2) << describe(r);
  EXPECT_TRUE(contains(r.err, "connleak: no report could be read\n")) << r.err;
  EXPECT_EQ(r.out, "");
}

TEST(ReportInputs, EmptyDirectoryWarnsAndAllowEmptyMakesItClean) {
  TempDir dir;
  Result strict = connleak({"report", dir.path()});
  EXPECT_EQ(strict.exit_code, 2) << describe(strict);
  EXPECT_TRUE(contains(strict.err, "no connleak.<pid>.json reports in " + dir.path()))
      << strict.err;
  Result lenient = connleak({"report", "--allow-empty", "--format", "sarif", dir.path()});
  EXPECT_EQ(lenient.exit_code, 0) << describe(lenient);
  EXPECT_EQ(json::parse(lenient.out)["runs"][0]["results"].size(), 0u);
}

TEST(ReportInputs, DirectoryTakesExitReportsOverDumpsAndTheLatestDump) {
  TempDir dir;
  json exit_report = json::parse(input("connleak.103.json"));
  write_file(dir.file("connleak.103.json"), exit_report.dump());
  // Dumps of the same process: superseded by its exit report.
  json dump = exit_report;
  dump["trigger"] = "signal";
  dump["connections"][0]["status"] = "open";
  write_file(dir.file("connleak.103.1.json"), dump.dump());
  // Another process that only dumped, twice: the latest dump counts.
  dump["pid"] = 300;
  dump["summary"]["opened"] = 1;
  write_file(dir.file("connleak.300.1.json"), dump.dump());
  dump["summary"]["opened"] = 2;
  write_file(dir.file("connleak.300.2.json"), dump.dump());
  write_file(dir.file(".connleak.300.json.tmp.300"), "half a fi");  // the shim's temp name: ignored
  write_file(dir.file("notes.txt"), "not a report");
  Result r = connleak({"report", "--format", "json", dir.path()});
  ASSERT_EQ(r.err, "");
  EXPECT_EQ(summary_of(r)["opened"], 3);  // 1 from 103's exit report + 2 from 300's latest dump
}

TEST(ReportInputs, SameFileTwiceIsReadOnce) {
  std::string f = golden("inputs/connleak.103.json");
  Result r = connleak({"report", "--format", "json", f, f, golden("inputs")});
  EXPECT_EQ(summary_of(r)["opened"], 15) << r.out;
}

TEST(ReportOutput, ToFile) {
  TempDir dir;
  Result r = connleak({"report", "-o", dir.file("out.txt"), golden("inputs")});
  EXPECT_EQ(r.exit_code, 23);
  EXPECT_EQ(r.out, "");
  EXPECT_TRUE(
      contains(read_file(dir.file("out.txt")), "SUMMARY: connleak: 4 leaked connection(s)"));
  Result bad = connleak({"report", "-o", "/nonexistent/dir/out.txt", golden("inputs")});
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_TRUE(contains(bad.err, "cannot write /nonexistent/dir/out.txt")) << bad.err;
}

TEST(ReportExit, FailOn) {
  // 101 alone: two leaks and a double close.
  std::string f = golden("inputs/connleak.101.json");
  EXPECT_EQ(connleak({"report", f}).exit_code, 23);
  EXPECT_EQ(connleak({"report", "--fail-on", "leaked", f}).exit_code, 23);
  EXPECT_EQ(connleak({"report", "--fail-on", "never", f}).exit_code, 0);
  // Only an alert left (the leaks suppressed): flagged fails, leaked passes.
  TempDir dir;
  write_file(dir.file("s.supp"), "leak:open_report_conn\n");
  EXPECT_EQ(connleak({"report", "--suppressions", dir.file("s.supp"), f}).exit_code, 23);
  EXPECT_EQ(connleak({"report", "--fail-on", "leaked", "--suppressions", dir.file("s.supp"), f})
                .exit_code,
            0);
}

TEST(ReportMerge, SingleReportKeepsItsProcess) {
  Result r = connleak({"report", golden("inputs/connleak.101.json")});
  EXPECT_TRUE(
      contains(r.out, "==101==connleak: detected connection leaks in /src/service --port 8080"))
      << r.out;
}
