// Ruby stacks (issue 13, point 5): every connection a Ruby program opens
// carries the "ruby" frames of the thread that opened it (method, file, line,
// innermost first), read by shim/ruby/ruby_stack.cpp through rb_profile_frames
// while ruby-pg sits in libpq without the GVL.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <set>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "tests/e2e/harness.h"
#include "tests/e2e/ruby_env.h"

namespace e2e {
namespace {

// The 1-based line of `path` that contains `text` (or is exactly `text`;
// exactly one line must match): the expected lines come from the program
// itself, not from numbers copied here.
int line_of(const std::string& path, const std::string& text, bool whole_line = false) {
  std::ifstream in(path);
  std::string line;
  int found = 0;
  for (int n = 1; std::getline(in, line); ++n)
    if (whole_line ? line == text : line.find(text) != std::string::npos) {
      if (found) throw std::runtime_error(path + ": '" + text + "' on two lines");
      found = n;
    }
  if (!found) throw std::runtime_error(path + ": no line has '" + text + "'");
  return found;
}

// The frames of `stack` in `file`, innermost first, as "function:line".
std::vector<std::string> frames_in(const json& stack, const std::string& file) {
  std::vector<std::string> out;
  for (const json& f : stack)
    if (f.at("file") == file)
      out.push_back(f.at("function").get<std::string>() + ":" +
                    std::to_string(f.at("line").get<int>()));
  return out;
}

std::string at_line(const std::string& function, int line) {
  return function + ":" + std::to_string(line);
}

void expect_password_nowhere(const Result& r) {
  const std::string password = pg("APP_PASSWORD");
  EXPECT_EQ(r.out.find(password), std::string::npos);
  EXPECT_EQ(r.err.find(password), std::string::npos);
  EXPECT_EQ(r.report_text.find(password), std::string::npos);
}

TEST(RubyStack, EachConnectionNamesTheMethodAndLineThatOpenedIt) {
  if (std::string why = ruby_pg_missing(); !why.empty()) GTEST_SKIP() << why;
  const std::string rb = ruby_script("pg_leak.rb");
  RunOptions o;
  o.env = {{"CONNLEAK_TEST_DUMP_EACH", "1"}};
  Result r = run({"/usr/bin/ruby", rb}, o);
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  EXPECT_EQ(summary(r, "opened"), 3u) << describe(r);
  EXPECT_EQ(summary(r, "closed"), 2u) << describe(r);
  EXPECT_EQ(summary(r, "leaked"), 1u) << describe(r);
  const int connect = line_of(rb, "conn = PG.connect(");
  // The leak (the canary of this run): opened by open_session through connect_db.
  auto leaked = with_status(report_of(r), "leaked");
  ASSERT_EQ(leaked.size(), 1u) << describe(r);
  const json& stack = leaked[0].at("acquired").at("ruby");
  EXPECT_EQ(frames_in(stack, rb),
            (std::vector<std::string>{at_line("connect_db", connect),
                                      at_line("open_session", line_of(rb, "def open_session")),
                                      at_line("<main>", line_of(rb, "open_session", true))}))
      << stack.dump(2);
  // Innermost first: ruby-pg's own Ruby code (PG.connect) sits above ours,
  // and is not the program's.
  ASSERT_FALSE(stack.empty());
  EXPECT_NE(stack[0].at("file").get<std::string>().find("/pg/"), std::string::npos)
      << stack.dump(2);
  EXPECT_EQ(stack[0].at("user"), false) << stack.dump(2);
  // The two the program closed, each seen in the dump made right after its
  // connect (dump n lists the connection opened n-th, the earlier ones
  // being closed by then), name their own methods.
  const std::vector<std::pair<std::string, std::string>> openers = {
      {"report_totals", "def report_totals"},
      {"refresh_cache", "def refresh_cache"},
      {"open_session", "def open_session"}};
  for (std::size_t n = 1; n <= openers.size(); ++n) {
    const std::string path =
        r.report_dir + "/connleak." + std::to_string(r.pid) + "." + std::to_string(n) + ".json";
    std::ifstream in(path);
    ASSERT_TRUE(in) << path << "\n" << describe(r);
    const json dump = json::parse(in);
    EXPECT_EQ(dump.at("trigger"), "request") << path;
    auto open = with_status(dump, "open");
    ASSERT_EQ(open.size(), 1u) << dump.dump(2);
    const auto& [method, def] = openers[n - 1];
    EXPECT_EQ(
        frames_in(open[0].at("acquired").at("ruby"), rb),
        (std::vector<std::string>{at_line("connect_db", connect), at_line(method, line_of(rb, def)),
                                  at_line("<main>", line_of(rb, method, true))}))
        << open[0].dump(2);
  }
  expect_password_nowhere(r);
}

TEST(RubyStack, ConnectionOpenedFromARubyThreadCarriesThatThreadsFrames) {
  if (std::string why = ruby_pg_missing(); !why.empty()) GTEST_SKIP() << why;
  const std::string rb = ruby_script("pg_thread.rb");
  Result r = run({"/usr/bin/ruby", rb});
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  EXPECT_EQ(r.out, "done\n") << describe(r);
  EXPECT_EQ(summary(r, "opened"), 3u) << describe(r);
  EXPECT_EQ(summary(r, "leaked"), 3u) << describe(r);
  const int connect = line_of(rb, "PG.connect(");
  const std::vector<std::string> on_main = {
      at_line("connect_db", connect), at_line("keep_on_main", line_of(rb, "def keep_on_main")),
      at_line("<main>", line_of(rb, "keep_on_main", true))};
  const std::vector<std::string> in_worker = {
      at_line("connect_db", connect), at_line("keep_in_worker", line_of(rb, "def keep_in_worker")),
      at_line("block in <main>", line_of(rb, "Thread.new { keep_in_worker }"))};
  const std::vector<std::string> in_fiber = {
      at_line("connect_db", connect), at_line("keep_in_fiber", line_of(rb, "def keep_in_fiber")),
      at_line("block in <main>", line_of(rb, "Fiber.new { keep_in_fiber }"))};
  auto leaked = with_status(report_of(r), "leaked");
  ASSERT_EQ(leaked.size(), 3u) << describe(r);
  // Whichever order the report lists them in: one of each; the worker's on
  // a thread of its own.
  std::vector<std::vector<std::string>> seen;
  std::set<long long> threads;
  for (const json& c : leaked) {
    seen.push_back(frames_in(c.at("acquired").at("ruby"), rb));
    threads.insert(c.at("thread").get<long long>());
  }
  std::sort(seen.begin(), seen.end());
  std::vector<std::vector<std::string>> expected = {on_main, in_worker, in_fiber};
  std::sort(expected.begin(), expected.end());
  EXPECT_EQ(seen, expected) << describe(r);
  EXPECT_EQ(threads.size(), 2u) << describe(r);
}

// While Ruby shuts down (at_exit blocks, then the finalizers left at exit,
// run by its cleanup) the execution context is whole: the connections opened
// there get their frames, and close as the runtime's leaks.
TEST(RubyStack, ConnectionsOpenedInAtExitAndFinalizersGetTheirFrames) {
  if (std::string why = ruby_pg_missing(); !why.empty()) GTEST_SKIP() << why;
  const std::string rb = ruby_script("pg_exit_hooks.rb");
  Result r = run({"/usr/bin/ruby", rb});
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  EXPECT_EQ(r.out, "done\n") << describe(r);
  EXPECT_EQ(summary(r, "leaked"), 2u) << describe(r);
  const int connect = line_of(rb, "PG.connect(");
  std::vector<std::vector<std::string>> seen;
  for (const json& c : with_status(report_of(r), "leaked"))
    seen.push_back(frames_in(c.at("acquired").at("ruby"), rb));
  std::sort(seen.begin(), seen.end());
  std::vector<std::vector<std::string>> expected = {
      {at_line("connect_db", connect), at_line("open_at_exit", line_of(rb, "def open_at_exit")),
       at_line("block in <main>", line_of(rb, "at_exit { open_at_exit }"))},
      {at_line("connect_db", connect),
       at_line("open_in_finalizer", line_of(rb, "def open_in_finalizer")),
       at_line("block in <main>", line_of(rb, "proc { open_in_finalizer }"))}};
  std::sort(expected.begin(), expected.end());
  EXPECT_EQ(seen, expected) << describe(r);
}

TEST(RubyStack, ConnleakRunPrintsTheRubyStackOfTheLeak) {
  if (std::string why = ruby_pg_missing(); !why.empty()) GTEST_SKIP() << why;
  const std::string rb = ruby_script("pg_leak.rb");
  RunOptions o;
  o.preload = false;
  Result r = run({CONNLEAK_CLI, "run", "--", "/usr/bin/ruby", rb}, o);
  EXPECT_EQ(r.exit_code, 23) << describe(r);
  EXPECT_NE(r.err.find("Ruby stack:"), std::string::npos) << describe(r);
  EXPECT_NE(
      r.err.find("in open_session " + rb + ":" + std::to_string(line_of(rb, "def open_session"))),
      std::string::npos)
      << describe(r);
  EXPECT_NE(
      r.err.find("in connect_db " + rb + ":" + std::to_string(line_of(rb, "conn = PG.connect("))),
      std::string::npos)
      << describe(r);
}

// A thread Ruby never ran on (started from C) has no execution context:
// rb_profile_frames would dereference null there. Its connection gets no
// Ruby frames and the process runs on; the main thread's, in the same run,
// gets its own.
TEST(RubyStack, ThreadStartedFromCGetsNoRubyFramesAndDoesNotCrash) {
  if (std::string why = ruby_pg_missing(); !why.empty()) GTEST_SKIP() << why;
  const std::string rb = ruby_script("pg_c_thread.rb");
  Result r = run({"/usr/bin/ruby", rb});
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  EXPECT_EQ(r.out, "done\n") << describe(r);
  EXPECT_EQ(summary(r, "leaked"), 2u) << describe(r);
  auto leaked = with_status(report_of(r), "leaked");
  ASSERT_EQ(leaked.size(), 2u) << describe(r);
  int from_c = 0, from_ruby = 0;
  for (const json& c : leaked) {
    const json& acquired = c.at("acquired");
    if (names_function(acquired.at("native"), "start_thread") &&
        !names_function(acquired.at("native"), "ruby_run_node")) {
      ++from_c;
      EXPECT_TRUE(!acquired.contains("ruby") || acquired.at("ruby").empty()) << c.dump(2);
    } else {
      ++from_ruby;
      EXPECT_EQ(frames_in(acquired.at("ruby"), rb),
                (std::vector<std::string>{
                    at_line("open_on_ruby_thread", line_of(rb, "def open_on_ruby_thread")),
                    at_line("<main>", line_of(rb, "open_on_ruby_thread", true))}))
          << c.dump(2);
    }
  }
  EXPECT_EQ(from_c, 1) << describe(r);
  EXPECT_EQ(from_ruby, 1) << describe(r);
  expect_password_nowhere(r);
}

// The compacting GC moves objects the reader reads without the GVL: with
// GC.compact running nonstop in another thread, the program runs as without
// the shim, and every Ruby stack taken names the right methods (a capture
// that overlapped a collection is dropped, not kept half-moved).
TEST(RubyStack, CompactingGcInAnotherThreadNeverCorruptsAStack) {
  if (std::string why = ruby_pg_missing(); !why.empty()) GTEST_SKIP() << why;
  const std::string rb = ruby_script("pg_compact.rb");
  Result r = run({"/usr/bin/ruby", rb});
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  EXPECT_GT(printed(r, "compactions"), 0) << describe(r);
  EXPECT_EQ(summary(r, "leaked"), 40u) << describe(r);
  const int connect = line_of(rb, "PG.connect(");
  const int nested = line_of(rb, "def nested_open");
  const int threads = line_of(rb, "4.times.map");
  std::size_t with_frames = 0;
  for (const json& c : with_status(report_of(r), "leaked")) {
    auto mine = frames_in(c.at("acquired").at("ruby"), rb);
    if (mine.empty()) continue;  // dropped: a collection overlapped the capture
    ++with_frames;
    // connect_db, nested_open(8..0), the `10.times` block, the thread's block.
    ASSERT_EQ(mine.size(), 12u) << c.dump(2);
    EXPECT_EQ(mine[0], at_line("connect_db", connect)) << c.dump(2);
    for (std::size_t i = 1; i < 10; ++i) EXPECT_EQ(mine[i], at_line("nested_open", nested));
    EXPECT_EQ(mine[10], at_line("block (3 levels) in <main>", threads)) << c.dump(2);
    EXPECT_EQ(mine[11], at_line("block (2 levels) in <main>", threads)) << c.dump(2);
  }
  EXPECT_GT(with_frames, 0u) << describe(r);
}

// A C program (no libruby in the process): no "ruby" key, while its own leak
// is reported in the same run.
TEST(RubyStack, CProgramHasNoRubyStack) {
  Result r = run({bin("raw_syscall_close")});
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  auto leaked = with_status(report_of(r), "leaked");
  ASSERT_EQ(leaked.size(), 1u) << describe(r);
  EXPECT_TRUE(names_function(leaked[0].at("acquired").at("native"), "kept_until_exit"))
      << leaked[0].dump(2);
  for (const json& c : report_of(r).at("connections"))
    EXPECT_FALSE(c.at("acquired").contains("ruby")) << c.dump(2);
  EXPECT_EQ(r.report_text.find("\"ruby\""), std::string::npos);
}

}  // namespace
}  // namespace e2e
