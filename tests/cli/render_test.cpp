// Golden files for every renderer, through `connleak report` on three
// hand-written process reports (tests/cli/golden/inputs): a native service and
// its worker leaking from the same site (one group of 3 across processes), a
// double close, a threshold alert, and a Python host. Plus shape checks that
// do not depend on the exact bytes: SARIF 2.1.0 structure and well-formed JUnit.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <set>

#include "tests/cli/harness.h"

using namespace cli_test;
using nlohmann::json;

namespace {

std::string inputs() {
  return golden("inputs");
}

// The tool's own version appears in SARIF; goldens must survive a release.
std::string normalize_version(std::string text) {
  const std::string version = CONNLEAK_VERSION;
  for (std::size_t at; (at = text.find("\"" + version + "\"")) != std::string::npos;)
    text.replace(at + 1, version.size(), "@VERSION@");
  return text;
}

Result report(const std::vector<std::string>& extra) {
  std::vector<std::string> args = {"report", "--source-root", "/src"};
  args.insert(args.end(), extra.begin(), extra.end());
  args.push_back(inputs());
  return connleak(args);
}

}  // namespace

TEST(Golden, Text) {
  Result r = report({});
  EXPECT_EQ(r.exit_code, 23) << describe(r);
  EXPECT_EQ(r.err, "");
  EXPECT_EQ(compare_golden("merged.txt", r.out), "");
  // The same site in processes 101 and 102 is one group of 3.
  EXPECT_TRUE(contains(r.out, "connleak: 3 connection(s) never closed, opened from:")) << r.out;
}

TEST(Golden, Json) {
  Result r = report({"--format", "json"});
  EXPECT_EQ(r.exit_code, 23) << describe(r);
  EXPECT_EQ(compare_golden("merged.json", r.out), "");
  json doc = json::parse(r.out);
  EXPECT_EQ(doc["summary"]["opened"], 15);
  EXPECT_EQ(doc["summary"]["leaked"], 4);
  EXPECT_EQ(doc["connections"].size(), 6u);
  std::set<int> pids;
  for (const json& c : doc["connections"]) pids.insert(c["pid"].get<int>());
  EXPECT_EQ(pids, (std::set<int>{101, 102, 103}));
}

TEST(Golden, Sarif) {
  Result r = report({"--format", "sarif"});
  EXPECT_EQ(r.exit_code, 23) << describe(r);
  EXPECT_EQ(compare_golden("merged.sarif", normalize_version(r.out)), "");
}

TEST(Golden, Junit) {
  Result r = report({"--format", "junit"});
  EXPECT_EQ(r.exit_code, 23) << describe(r);
  EXPECT_EQ(compare_golden("merged.junit.xml", r.out), "");
}

TEST(Golden, TextWithSuppressions) {
  TempDir dir;
  write_file(dir.file("connleak.supp"),
             "# known: the pool keeps it\nleak:Pool<*>::checkout\n\nleak:get_conn\n");
  Result r = report({"--suppressions", dir.file("connleak.supp")});
  EXPECT_EQ(r.exit_code, 23) << describe(r);
  // The table names the file's patterns, not its path: the golden stays path-free.
  EXPECT_EQ(compare_golden("suppressed.txt", r.out), "");
}

TEST(Sarif, ShapeFollowsSarif210) {
  Result r = report({"--format", "sarif"});
  json doc = json::parse(r.out);
  EXPECT_EQ(doc["version"], "2.1.0");
  EXPECT_TRUE(doc["$schema"].get<std::string>().find("sarif") != std::string::npos);
  ASSERT_EQ(doc["runs"].size(), 1u);
  const json& run = doc["runs"][0];
  EXPECT_EQ(run["tool"]["driver"]["name"], "connleak");
  std::vector<std::string> rule_ids;
  for (const json& rule : run["tool"]["driver"]["rules"]) {
    rule_ids.push_back(rule["id"]);
    EXPECT_TRUE(rule["shortDescription"]["text"].is_string());
  }
  ASSERT_FALSE(run["results"].empty());
  for (const json& res : run["results"]) {
    std::size_t index = res["ruleIndex"];
    ASSERT_LT(index, rule_ids.size());
    EXPECT_EQ(res["ruleId"], rule_ids[index]);
    EXPECT_TRUE(res["message"]["text"].is_string());
    const json& loc = res["locations"][0]["physicalLocation"];
    EXPECT_FALSE(loc["artifactLocation"]["uri"].get<std::string>().empty()) << res.dump(2);
    EXPECT_GE(loc["region"]["startLine"].get<int>(), 1);
    EXPECT_FALSE(res["codeFlows"][0]["threadFlows"][0]["locations"].empty());
  }
}

TEST(Sarif, OneResultPerSiteAtTheUsersLine) {
  Result r = report({"--format", "sarif"});
  const json doc = json::parse(r.out);
  const json& results = doc["runs"][0]["results"];
  ASSERT_GE(results.size(), 2u);
  // Leaks first, largest site first: 3 connections from open_report_conn in 2 processes.
  const json& top = results[0];
  EXPECT_EQ(top["ruleId"], "connleak/leaked-connection");
  EXPECT_EQ(top["properties"]["count"], 3);
  EXPECT_EQ(top["properties"]["pids"], json::array({101, 102}));
  // The innermost frame is in libpqxx (/usr/lib): the location skips to the user's code.
  const json& loc = top["locations"][0]["physicalLocation"];
  EXPECT_EQ(loc["artifactLocation"]["uri"], "app.c");
  EXPECT_EQ(loc["artifactLocation"]["uriBaseId"], "%SRCROOT%");
  EXPECT_EQ(loc["region"]["startLine"], 42);
  // The whole stack is in the message.
  std::string text = top["message"]["text"];
  EXPECT_TRUE(contains(text, "pqxx::connection::init")) << text;
  EXPECT_TRUE(contains(text, "__libc_start_call_main")) << text;
  // The Python site points at the Python line, past the psycopg2 frame in dist-packages.
  bool python_site = false;
  for (const json& res : results) {
    const json& l = res["locations"][0]["physicalLocation"];
    if (l["artifactLocation"]["uri"] == "app/db.py") {
      python_site = true;
      EXPECT_EQ(l["region"]["startLine"], 17);
    }
  }
  EXPECT_TRUE(python_site) << r.out;
}

TEST(Sarif, FilesOutsideTheSourceRootAreAbsoluteUris) {
  Result r = connleak({"report", "--format", "sarif", "--source-root", "/elsewhere", inputs()});
  const json doc = json::parse(r.out);
  const json& loc = doc["runs"][0]["results"][0]["locations"][0]["physicalLocation"];
  EXPECT_EQ(loc["artifactLocation"]["uri"], "file:///src/app.c");
  EXPECT_FALSE(loc["artifactLocation"].contains("uriBaseId"));
}

TEST(Junit, ParsesBackAsWellFormedXml) {
  TempDir dir;
  Result r = report({"--format", "junit", "-o", dir.file("junit.xml")});
  EXPECT_EQ(r.exit_code, 23) << describe(r);
  EXPECT_EQ(r.out, "");
  // python3's XML parser is strict: a stray '&' or '<' from a C++ name or a
  // target would fail here.
  const std::string check =
      "import sys, xml.etree.ElementTree as ET\n"
      "root = ET.parse(sys.argv[1]).getroot()\n"
      "suite = root.find('testsuite')\n"
      "cases = suite.findall('testcase')\n"
      "failures = [c for c in cases if c.find('failure') is not None]\n"
      "assert root.tag == 'testsuites', root.tag\n"
      "assert int(suite.get('tests')) == len(cases), (suite.get('tests'), len(cases))\n"
      "assert int(suite.get('failures')) == len(failures)\n"
      "names = [c.get('name') for c in cases]\n"
      "print(len(cases), len(failures))\n"
      "print('\\n'.join(names))\n"
      "print(failures[0].find('failure').text)\n";
  Result py = run({"python3", "-c", check, dir.file("junit.xml")});
  ASSERT_EQ(py.exit_code, 0) << describe(py);
  EXPECT_TRUE(contains(py.out, "4 4\n")) << py.out;
  EXPECT_TRUE(contains(py.out, "Pool<Conn&>::checkout(char const*) (pool.cpp:31)")) << py.out;
  EXPECT_TRUE(contains(py.out, "open_report_conn (app.c:42)")) << py.out;
}

TEST(Junit, CleanReportIsOnePassingTestCase) {
  TempDir dir;
  std::string clean = read_file(golden("inputs/connleak.103.json"));
  json doc = json::parse(clean);
  doc["connections"] = json::array();
  doc["summary"]["leaked"] = 0;
  write_file(dir.file("connleak.103.json"), doc.dump());
  Result r = connleak({"report", "--format", "junit", dir.path()});
  EXPECT_EQ(r.exit_code, 0) << describe(r);
  EXPECT_TRUE(contains(r.out, "tests=\"1\" failures=\"0\"")) << r.out;
  EXPECT_TRUE(contains(r.out, "<testcase classname=\"connleak\" name=\"no leaked connections\"/>"))
      << r.out;
}
