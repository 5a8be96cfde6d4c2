// Suppressions: the matcher and parser directly (collector/suppressions), then
// through `connleak report` on the golden inputs: match, no match, wildcards,
// anchors, hit counts, and bad files (exit 2 naming file:line).
#include "collector/policy/suppressions.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "tests/cli/harness.h"

using namespace cli_test;
using connleak::Suppressions;
using connleak::template_match;
using nlohmann::json;

TEST(TemplateMatch, LeakSanitizerSemantics) {
  EXPECT_TRUE(template_match("open_report_conn", "open_report_conn"));
  EXPECT_TRUE(template_match("report", "open_report_conn"));  // unanchored: anywhere
  EXPECT_TRUE(template_match("libpq.so", "/usr/lib/x86_64-linux-gnu/libpq.so.5"));
  EXPECT_FALSE(template_match("^report", "open_report_conn"));
  EXPECT_TRUE(template_match("^open", "open_report_conn"));
  EXPECT_FALSE(template_match("open$", "open_report_conn"));
  EXPECT_TRUE(template_match("conn$", "open_report_conn"));
  EXPECT_TRUE(template_match("^open_*_conn$", "open_report_conn"));
  EXPECT_FALSE(template_match("^open_*_conn$", "open_report_connection"));
  EXPECT_TRUE(template_match("a*b$", "ab_b"));  // needs backtracking (LSan's own matcher misses it)
  EXPECT_TRUE(template_match("Pool<*>::checkout", "Pool<Conn&>::checkout(char const*)"));
  EXPECT_FALSE(template_match("anything", ""));  // an unknown name is never suppressed
}

TEST(SuppressionsParse, CommentsBlankLinesAndWhitespace) {
  std::string error;
  auto s = Suppressions::parse("# header\n\n  leak:foo  \n\t# indented comment\nleak: bar*\n",
                               "x.supp", &error);
  ASSERT_TRUE(s) << error;
  ASSERT_EQ(s->entries().size(), 2u);
  EXPECT_EQ(s->entries()[0].pattern, "foo");
  EXPECT_EQ(s->entries()[0].origin, "x.supp:3");
  EXPECT_EQ(s->entries()[1].pattern, "bar*");
}

TEST(SuppressionsParse, MalformedLinesNameFileAndLine) {
  std::string error;
  EXPECT_FALSE(Suppressions::parse("leak:ok\nnot a suppression\n", "a.supp", &error));
  EXPECT_EQ(error, "a.supp:2: expected 'leak:<pattern>', got 'not a suppression'");
  EXPECT_FALSE(Suppressions::parse("race:foo\n", "b.supp", &error));
  EXPECT_EQ(error, "b.supp:1: unknown suppression type 'race' (only 'leak:' is supported)");
  EXPECT_FALSE(Suppressions::parse("\n\nleak:\n", "c.supp", &error));
  EXPECT_EQ(error, "c.supp:3: empty pattern in 'leak:'");
  EXPECT_FALSE(Suppressions::parse("leak:*\n", "d.supp", &error));  // would hide everything
}

TEST(SuppressionsMatch, AnyFrameFunctionFileOrModuleNativeOrPython) {
  connleak::Stacks stacks;
  stacks.native.push_back({0x1, "/usr/lib/libfoo.so", "foo_open", std::nullopt, std::nullopt});
  stacks.native.push_back({0x2, "/app/bin/server", "main", "/app/src/main.c", 10});
  stacks.script =
      std::vector<connleak::Frame>{{std::nullopt, std::nullopt, "get_conn", "app/db.py", 17}};
  std::string error;
  for (const char* hit :
       {"leak:foo_open", "leak:libfoo", "leak:src/main.c", "leak:get_conn", "leak:app/db.py"}) {
    auto s = Suppressions::parse(hit, "t", &error);
    ASSERT_TRUE(s);
    EXPECT_TRUE(s->match(stacks)) << hit;
  }
  auto miss = Suppressions::parse("leak:nothing_like_it\nleak:^main.c", "t", &error);
  EXPECT_FALSE(miss->match(stacks));
}

namespace {

struct SuppressedRun {
  Result result;
  json doc;
};

SuppressedRun report_with(const std::string& suppressions, const std::string& format = "json") {
  TempDir dir;
  write_file(dir.file("s.supp"), suppressions);
  SuppressedRun r;
  r.result = cli_test::connleak(
      {"report", "--format", format, "--suppressions", dir.file("s.supp"), golden("inputs")});
  if (format == "json" && !r.result.out.empty()) r.doc = json::parse(r.result.out);
  return r;
}

}  // namespace

TEST(Suppressions, MatchRemovesConnectionsAndCountsHits) {
  SuppressedRun r = report_with("leak:open_report_conn\n");
  EXPECT_EQ(r.result.exit_code, 23) << describe(r.result);  // the Python leak and the alerts remain
  EXPECT_EQ(r.doc["connections"].size(), 3u);
  EXPECT_EQ(r.doc["summary"]["leaked"], 1);   // 4 leaks, 3 suppressed
  EXPECT_EQ(r.doc["summary"]["opened"], 15);  // what happened is unchanged
  ASSERT_EQ(r.doc["suppressions"].size(), 1u);
  EXPECT_EQ(r.doc["suppressions"][0]["suppression"], "leak:open_report_conn");
  EXPECT_EQ(r.doc["suppressions"][0]["hits"], 3);
}

TEST(Suppressions, NoMatchChangesNothing) {
  SuppressedRun r = report_with("leak:no_such_function\n");
  EXPECT_EQ(r.result.exit_code, 23);
  EXPECT_EQ(r.doc["connections"].size(), 6u);
  EXPECT_EQ(r.doc["suppressions"][0]["hits"], 0);
  SuppressedRun text = report_with("leak:no_such_function\n", "text");
  EXPECT_FALSE(contains(text.result.out, "Suppressions used:")) << text.result.out;
}

TEST(Suppressions, WildcardsAndEverySuppressedExitsZero) {
  SuppressedRun r = report_with(
      "leak:open_*_conn\n"
      "leak:app/db.py\n"    // a Python frame's file
      "leak:cache_warm*\n"  // the double close
      "leak:^Pool<*>::checkout\n");
  EXPECT_EQ(r.result.exit_code, 0) << describe(r.result);
  EXPECT_TRUE(r.doc["connections"].empty());
  EXPECT_EQ(r.doc["summary"]["leaked"], 0);
  EXPECT_EQ(r.doc["summary"]["flagged"], 0);
  EXPECT_EQ(r.doc["summary"]["double_closes"], 0);
  std::vector<int> hits;
  for (const json& s : r.doc["suppressions"]) hits.push_back(s["hits"]);
  EXPECT_EQ(hits, (std::vector<int>{3, 1, 1, 1}));
}

TEST(Suppressions, ModuleSubstringMatchesLikeLeakSanitizer) {
  // Every leak goes through libpqxx or psycopg2 (a module path); alerts stay.
  SuppressedRun r = report_with("leak:libpqxx\nleak:psycopg2\n");
  EXPECT_EQ(r.doc["summary"]["leaked"], 0);
  EXPECT_EQ(r.result.exit_code, 23);  // default --fail-on flagged: the alerts remain
  TempDir dir;
  write_file(dir.file("s.supp"), "leak:libpqxx\nleak:psycopg2\n");
  Result only_leaks = cli_test::connleak(
      {"report", "--fail-on", "leaked", "--suppressions", dir.file("s.supp"), golden("inputs")});
  EXPECT_EQ(only_leaks.exit_code, 0) << describe(only_leaks);
}

TEST(Suppressions, TextTableBeforeSummaryWithCounts) {
  SuppressedRun r = report_with("leak:open_report_conn\nleak:unused\n", "text");
  const std::string& out = r.result.out;
  std::size_t table =
      out.find("Suppressions used:\n  count template\n      3 leak:open_report_conn\n");
  std::size_t summary = out.find("SUMMARY: connleak:");
  ASSERT_NE(table, std::string::npos) << out;
  ASSERT_NE(summary, std::string::npos) << out;
  EXPECT_LT(table, summary);
  EXPECT_FALSE(contains(out, "leak:unused")) << "only used suppressions are listed";
}

TEST(Suppressions, BadFileIsExit2NamingFileAndLine) {
  TempDir dir;
  write_file(dir.file("bad.supp"), "# ok so far\nleak:fine\nfun:oops\n");
  Result r =
      cli_test::connleak({"report", "--suppressions", dir.file("bad.supp"), golden("inputs")});
  EXPECT_EQ(r.exit_code, 2) << describe(r);
  EXPECT_EQ(lines(r.err).size(), 1u) << r.err;
  EXPECT_TRUE(contains(r.err, dir.file("bad.supp") + ":3: unknown suppression type 'fun'"))
      << r.err;
  EXPECT_EQ(r.out, "");
}

TEST(Suppressions, MissingFileIsExit2) {
  Result r = cli_test::connleak(
      {"report", "--suppressions", "/nonexistent/connleak.supp", golden("inputs")});
  EXPECT_EQ(r.exit_code, 2) << describe(r);
  EXPECT_EQ(r.err,
            "connleak: cannot read suppressions file /nonexistent/connleak.supp: No such file or "
            "directory\n");
}
