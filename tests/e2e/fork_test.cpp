// fork() while other threads are inside the shim: every lock the shim can
// hold is a ForkMutex, taken before fork and re-initialised in the child, so
// a child never inherits one held by a thread that does not exist there.
#include <gtest/gtest.h>

#include <cstdio>
#include <string>

#include "tests/e2e/harness.h"

namespace e2e {
namespace {

constexpr int kForks = 2000;
constexpr int kChildDeadlineMs = 10'000;

// fork_storm's summary line: "forks=N ok=N worker_connects=N".
struct StormCounts {
  int forks = 0, ok = 0;
  long worker_connects = 0;
};
bool parse_storm(const std::string& out, StormCounts& c) {
  return std::sscanf(out.c_str(), "forks=%d ok=%d worker_connects=%ld", &c.forks, &c.ok,
                     &c.worker_connects) == 3;
}

TEST(ForkSafety, ChildrenForkedDuringConnectStormConnectAndExit) {
  RunOptions opts;
  opts.options = "print_report=0";
  opts.timeout_seconds = 540;
  Result r = run(
      {bin("fork_storm"), pg("CONNINFO"), std::to_string(kForks), std::to_string(kChildDeadlineMs)},
      opts);
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  StormCounts c;
  ASSERT_TRUE(parse_storm(r.out, c)) << r.out;
  EXPECT_EQ(c.forks, kForks);
  EXPECT_EQ(c.ok, kForks);
  // The workers really ran: the parent recorded each of their connects.
  EXPECT_GT(c.worker_connects, 0);
  EXPECT_EQ(summary(r, "opened"), static_cast<std::uint64_t>(c.worker_connects));
  EXPECT_EQ(summary(r, "leaked"), 0u);
  // Each child reported under its own pid, with its own connection tracked
  // (the shim worked in the child, it was not merely not deadlocked).
  std::vector<std::string> reports = list_reports(r.report_dir);
  EXPECT_EQ(reports.size(), static_cast<std::size_t>(kForks) + 1);
  int children_checked = 0;
  for (const std::string& name : reports) {
    if (name == "connleak." + std::to_string(r.pid) + ".json") continue;
    std::optional<json> child = read_report(r.report_dir + "/" + name);
    ASSERT_TRUE(child.has_value()) << name;
    const json& s = child->at("summary");
    EXPECT_EQ(s.at("opened"), 1u) << name;
    EXPECT_EQ(s.at("closed"), 1u) << name;
    EXPECT_EQ(s.at("leaked"), 0u) << name;
    ++children_checked;
  }
  EXPECT_EQ(children_checked, kForks);
}

// The storm program must be fork-safe on its own, or the test above blames the
// shim for the program's races: its workers dlopen and dlclose libm while main
// forks, which glibc survives only because main keeps libm mapped (a real
// load or unload split by fork() kills the child in ld.so, preloaded or not;
// fork_storm.c says how). The shim statically linked maps no libm itself.
TEST(ForkSafety, StormProgramIsForkSafeWithoutTheShim) {
  RunOptions opts;
  opts.preload = false;
  opts.timeout_seconds = 540;
  Result r =
      run({bin("fork_storm"), pg("CONNINFO"), "500", std::to_string(kChildDeadlineMs)}, opts);
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  StormCounts c;
  ASSERT_TRUE(parse_storm(r.out, c)) << r.out;
  EXPECT_EQ(c.ok, 500);
  EXPECT_GT(c.worker_connects, 0);
  EXPECT_TRUE(list_reports(r.report_dir).empty());  // really ran without the shim
}

}  // namespace
}  // namespace e2e
