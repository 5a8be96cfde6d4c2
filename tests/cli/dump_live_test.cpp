// `connleak dump` against a real process under the shim holding a real
// connection.
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>

#include "tests/cli/harness.h"

using namespace cli_test;
using nlohmann::json;

namespace {

const std::string kHolderSource = source_dir() + "/tests/cli/programs/hold_connection.c";

// The line of hold_connection.c where it opens its connection.
int open_line() {
  std::vector<std::string> all = lines(read_file(kHolderSource));
  for (std::size_t i = 0; i < all.size(); ++i)
    if (contains(all[i], "HOLD-OPEN")) return static_cast<int>(i) + 1;
  return -1;
}

// The held connection, opened in hold_this_connection at the HOLD-OPEN line.
void expect_the_held_connection(const json& doc, pid_t pid) {
  EXPECT_EQ(doc["trigger"], "request");
  EXPECT_EQ(doc["pid"], pid);
  ASSERT_EQ(doc["connections"].size(), 1u) << doc.dump(2);
  const json& c = doc["connections"][0];
  EXPECT_EQ(c["status"], "open");
  bool found = false;
  for (const json& f : c["acquired"]["native"])
    if (f["function"] == "hold_this_connection" && f["line"] == open_line() &&
        f["file"].is_string() &&
        contains(f["file"].get<std::string>(), "programs/hold_connection.c"))
      found = true;
  EXPECT_TRUE(found) << c["acquired"].dump(2);
}

// The JSON files in `dir`, by name (the process's journal sits there too).
std::set<std::string> dump_files(const std::string& dir) {
  std::set<std::string> out;
  for (const auto& e : std::filesystem::directory_iterator(dir))
    if (e.path().extension() == ".json") out.insert(e.path().filename().string());
  return out;
}

// hold_connection preloaded with the control socket on (control=1: a plain
// preloaded process serves `connleak dump` only when asked, no thread
// otherwise; under `connleak run` it is on by default) plus `options`.
Process holder_with(const std::string& options) {
  return Process({bin("hold_connection")},
                 {.env = {{"LD_PRELOAD", shim_path()}, {"CONNLEAK_OPTIONS", "control=1" + options}},
                  .pg = true});
}

// `connleak dump PID`'s text: the heading for the one held connection and
// the function that opened it.
Result expect_text_dump(const std::string& pid) {
  Result text = connleak({"dump", pid});
  EXPECT_EQ(text.exit_code, 0) << describe(text);
  EXPECT_TRUE(contains(text.out, "==" + pid + "==connleak: dump (request): 1 open connection(s)"))
      << text.out;
  EXPECT_TRUE(contains(text.out, "hold_this_connection")) << text.out;
  return text;
}

}  // namespace

TEST(Dump, DumpAgainstLiveProcess) {
  Process holder = holder_with("");
  ASSERT_EQ(holder.read_line(), "ready");
  const std::string pid = std::to_string(holder.pid());

  expect_text_dump(pid);

  Result as_json = connleak({"dump", "--format", "json", pid});
  ASSERT_EQ(as_json.exit_code, 0) << describe(as_json);
  json doc = json::parse(as_json.out);
  EXPECT_EQ(doc["trigger"], "request");
  EXPECT_EQ(doc["pid"], holder.pid());
  ASSERT_EQ(doc["connections"].size(), 1u);
  EXPECT_EQ(doc["connections"][0]["status"], "open");

  Result done = holder.wait();
  EXPECT_EQ(done.exit_code, 0) << describe(done);
}

TEST(Dump, WorksOutOfTheBoxUnderConnleakRun) {
  // `connleak run` turns the control socket on; `exec` keeps the shell's pid.
  Process run(
      {cli_path(), "run", "--", "/bin/sh", "-c", "echo $$; exec \"$0\"", bin("hold_connection")},
      {.pg = true});
  const std::string pid = run.read_line();
  ASSERT_EQ(run.read_line(), "ready");
  Result text = connleak({"dump", pid});
  EXPECT_EQ(text.exit_code, 0) << describe(text);
  EXPECT_TRUE(contains(text.out, "==" + pid + "==connleak: dump (request): 1 open connection(s)"))
      << text.out;
  Result done = run.wait();
  EXPECT_EQ(done.exit_code, 0) << describe(done);
}

// Point 7 of issue 16: each `connleak dump` also leaves the dump in the
// process's report_dir, numbered like a signal's, so a CI job archiving the
// directory keeps every dump.
TEST(Dump, EachDumpLeavesANumberedFileInReportDir) {
  TempDir dir;
  Process holder = holder_with(":report_dir=" + dir.path());
  ASSERT_EQ(holder.read_line(), "ready");
  const pid_t pid = holder.pid();
  const std::string first = dir.file("connleak." + std::to_string(pid) + ".1.json");
  const std::string second = dir.file("connleak." + std::to_string(pid) + ".2.json");

  Result text = connleak({"dump", std::to_string(pid)});
  ASSERT_EQ(text.exit_code, 0) << describe(text);
  // The build records the source path relative to its directory.
  EXPECT_TRUE(contains(text.out, "in hold_this_connection ")) << text.out;
  EXPECT_TRUE(contains(
      text.out, "tests/cli/programs/hold_connection.c:" + std::to_string(open_line()) + " ("))
      << text.out;
  EXPECT_EQ(text.err, "connleak: process " + std::to_string(pid) + " also wrote this dump to " +
                          first + "\n");

  Result as_json = connleak({"dump", "--json", std::to_string(pid)});
  ASSERT_EQ(as_json.exit_code, 0) << describe(as_json);
  json printed = json::parse(as_json.out);  // the JSON itself, not text
  expect_the_held_connection(printed, pid);
  EXPECT_EQ(as_json.err, "connleak: process " + std::to_string(pid) + " also wrote this dump to " +
                             second + "\n");

  EXPECT_EQ(dump_files(dir.path()),
            (std::set<std::string>{"connleak." + std::to_string(pid) + ".1.json",
                                   "connleak." + std::to_string(pid) + ".2.json"}));
  for (const std::string& file : {first, second}) {
    SCOPED_TRACE(file);
    expect_the_held_connection(json::parse(read_file(file)), pid);
    EXPECT_EQ(std::filesystem::status(file).permissions() & std::filesystem::perms::all,
              std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
  }
  // The second file is the dump --json printed: the same connection, same id.
  EXPECT_EQ(json::parse(read_file(second))["connections"][0]["id"],
            printed["connections"][0]["id"]);

  Result done = holder.wait();
  EXPECT_EQ(done.exit_code, 0) << describe(done);
  EXPECT_TRUE(std::filesystem::exists(dir.file("connleak." + std::to_string(pid) + ".json")));
}

TEST(Dump, WithoutReportDirTheTextStillComesAndOneLineSaysNoFile) {
  Process holder = holder_with("");
  ASSERT_EQ(holder.read_line(), "ready");
  const std::string pid = std::to_string(holder.pid());
  Result text = expect_text_dump(pid);
  EXPECT_EQ(text.err, "connleak: no file written: process " + pid +
                          " has no report_dir (run it under `connleak run`, or set "
                          "CONNLEAK_OPTIONS=report_dir=DIR)\n");
  Result done = holder.wait();
  EXPECT_EQ(done.exit_code, 0) << describe(done);
}
