// `connleak dump` against a real process under the shim holding a real
// connection.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "tests/cli/harness.h"

using namespace cli_test;
using nlohmann::json;

// Disabled until the shim's control socket (abstract "\0connleak.<pid>",
// "dump\n" -> JSON report until EOF) lands with the dump issue; then drop the
// DISABLED_ prefix. The client side is covered by DumpProtocol.* meanwhile.
TEST(Dump, DumpAgainstLiveProcess) {
  // control=1: a plain preloaded process serves `connleak dump` only when asked
  // (no thread otherwise); under `connleak run` it is on by default.
  Process holder(
      {bin("hold_connection")},
      {.env = {{"LD_PRELOAD", shim_path()}, {"CONNLEAK_OPTIONS", "control=1"}}, .pg = true});
  ASSERT_EQ(holder.read_line(), "ready");
  const std::string pid = std::to_string(holder.pid());

  Result text = connleak({"dump", pid});
  EXPECT_EQ(text.exit_code, 0) << describe(text);
  EXPECT_TRUE(contains(text.out, "==" + pid + "==connleak: dump (request): 1 open connection(s)"))
      << text.out;
  EXPECT_TRUE(contains(text.out, "hold_this_connection")) << text.out;

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
