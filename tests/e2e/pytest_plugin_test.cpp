// The pytest plugin (python/connleak/pytest_plugin.py): a real test suite
// (tests/e2e/pytest_suite) run by Debian's pytest under the shim against the
// throwaway PostgreSQL. Assertions come from pytest's JUnit XML (which test
// case fails in its teardown, with which message) and from the process's
// JSON exit report (the "context" of each leaked connection and checkout).
// Every test the plugin must never flag runs next to the flagged ones.
#include <glob.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>

#include "tests/e2e/harness.h"

namespace e2e {
namespace {

const std::string kSuite = CONNLEAK_E2E_PYTEST_SUITE;

std::string suite_file(const std::string& name) {
  return kSuite + "/" + name;
}

// A scratch directory for the JUnit XML, removed with the test.
class Scratch {
 public:
  Scratch() {
    char tmpl[] = "/tmp/connleak-e2e-pytest-XXXXXX";
    if (!mkdtemp(tmpl)) throw std::runtime_error("mkdtemp failed");
    dir_ = tmpl;
  }
  ~Scratch() { std::filesystem::remove_all(dir_); }
  std::string path(const std::string& name) const { return dir_ + "/" + name; }

 private:
  std::string dir_;
};

std::string unescape_xml(std::string s) {
  static const std::pair<const char*, const char*> entities[] = {{"&quot;", "\""}, {"&apos;", "'"},
                                                                 {"&lt;", "<"},    {"&gt;", ">"},
                                                                 {"&#10;", "\n"},  {"&amp;", "&"}};
  for (const auto& [from, to] : entities)
    for (std::size_t at = s.find(from); at != std::string::npos; at = s.find(from, at + 1))
      s.replace(at, std::strlen(from), to);
  return s;
}

// One <testcase> of pytest's JUnit XML: "module.py::name" -> its failure or
// error text ("" when it passed).
struct Case {
  std::string problem;  // the <error>/<failure> element's message and body
  bool skipped = false;
};

std::map<std::string, Case> junit_cases(const std::string& xml_path) {
  std::ifstream in(xml_path);
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string xml = ss.str();
  std::map<std::string, Case> cases;
  static const std::regex head(R"re(<testcase classname="([^"]*)" name="([^"]*)")re");
  for (auto it = std::sregex_iterator(xml.begin(), xml.end(), head); it != std::sregex_iterator();
       ++it) {
    const std::size_t start = it->position(0);
    std::size_t end = xml.find("<testcase ", start + 1);
    std::string body =
        xml.substr(start, end == std::string::npos ? std::string::npos : end - start);
    std::string classname = (*it)[1].str();
    std::string file = classname;
    for (char& c : file)
      if (c == '.') c = '/';
    Case c;
    for (const char* tag : {"<error ", "<failure "})
      if (std::size_t at = body.find(tag); at != std::string::npos)
        c.problem += unescape_xml(body.substr(at));
    c.skipped = body.find("<skipped") != std::string::npos;
    cases[file + ".py::" + unescape_xml((*it)[2].str())] = c;
  }
  return cases;
}

std::string hooks_dir() {
  return CONNLEAK_E2E_PY_HOOKS_DIR;
}

// The suite's own interpreter settings: no bytecode or cache written into
// the source tree.
std::vector<std::pair<std::string, std::string>> suite_env(const std::string& python_path) {
  return {{"PYTHONPATH", python_path}, {"PYTHONDONTWRITEBYTECODE", "1"}};
}

std::vector<std::string> pytest_argv(const std::string& python, const std::string& junit,
                                     const std::vector<std::string>& args) {
  std::vector<std::string> argv{python,
                                "-m",
                                "pytest",
                                "-p",
                                "no:cacheprovider",
                                "--junitxml=" + junit,
                                "-q",
                                "--rootdir=" + kSuite};
  argv.insert(argv.end(), args.begin(), args.end());
  return argv;
}

// "in FUNCTION FILE:LINE" as the plugin's messages print a Python frame.
std::string frame_text(const std::string& function, const std::string& file,
                       const std::string& marker) {
  return "in " + function + " " + file + ":" + std::to_string(line_of(file, marker));
}

json context_of(const json& entry) {
  return entry.contains("context") ? entry.at("context") : json::object();
}

// The report's entries (connections or checkouts) whose context names `test`.
std::vector<json> opened_by(const json& report, const char* list, const std::string& test) {
  std::vector<json> out;
  for (const json& e : report.at(list))
    if (context_of(e).value("test", "") == test) out.push_back(e);
  return out;
}

bool acquired_at(const json& entry, const std::string& function, const std::string& file,
                 const std::string& marker) {
  return python_names(entry.at("acquired").at("python"), function, file, line_of(file, marker));
}

// What must be flagged, and where the leak was opened.
struct Expected {
  std::string function, file, marker;
};

const std::map<std::string, Expected>& flagged_tests() {
  static const std::map<std::string, Expected> tests = {
      {"test_sync.py::test_leaks_psycopg2",
       {"test_leaks_psycopg2", "test_sync.py", "LEAK-PSYCOPG2"}},
      {"test_sync.py::test_uses_leaky_fixture", {"leaky_fixture", "test_sync.py", "LEAK-FIXTURE"}},
      {"test_sync.py::test_allowed_one_leaks_two",
       {"test_allowed_one_leaks_two", "test_sync.py", "ALLOWED-TWO-B"}},
      {"test_sync.py::test_param[True]", {"test_param", "test_sync.py", "LEAK-PARAM"}},
      {"test_sqlalchemy.py::test_session_not_closed",
       {"test_session_not_closed", "test_sqlalchemy.py", "LEAK-SESSION"}},
      {"test_asyncpg.py::test_async_leaks_acquire",
       {"test_async_leaks_acquire", "test_asyncpg.py", "LEAK-ACQUIRE"}},
  };
  return tests;
}

const std::set<std::string>& clean_tests() {
  static const std::set<std::string> tests = {
      "test_sync.py::test_clean",
      "test_sync.py::test_allowed_one",
      "test_sync.py::test_ignored",
      "test_sync.py::test_param[False]",
      "test_sqlalchemy.py::test_session_closed",
      "test_asyncpg.py::test_async_clean",
      "test_module_fixture.py::test_shared_first",
      "test_module_fixture.py::test_shared_second",
      "test_module_forgotten.py::test_forgotten_first",
  };
  return tests;
}

TEST(PytestPlugin, EachLeakFailsTheTestThatMadeItAndNoOther) {
  Scratch scratch;
  const std::string junit = scratch.path("junit.xml");
  Result r = run(pytest_argv("/usr/bin/python3", junit, {"--connleak", "--connleak-fail", kSuite}),
                 {.env = suite_env(hooks_dir())});
  ASSERT_EQ(r.exit_code, 1) << describe(r);  // pytest: some tests failed
  auto cases = junit_cases(junit);
  ASSERT_EQ(cases.size(), flagged_tests().size() + clean_tests().size() + 1) << describe(r);

  for (const auto& [test, where] : flagged_tests()) {
    const std::string file = suite_file(where.file);
    const Case& c = cases[test];
    EXPECT_NE(c.problem.find("failed on teardown with"), std::string::npos) << test << c.problem;
    EXPECT_NE(c.problem.find("connleak: " + test + ": "), std::string::npos) << test << c.problem;
    EXPECT_NE(c.problem.find(frame_text(where.function, file, where.marker)), std::string::npos)
        << test << c.problem;
  }
  EXPECT_NE(cases["test_sync.py::test_allowed_one_leaks_two"].problem.find(
                "2 connection(s) left open (1 allowed by @pytest.mark.connleak)"),
            std::string::npos);
  EXPECT_NE(cases["test_asyncpg.py::test_async_leaks_acquire"].problem.find(
                "1 pool checkout(s) left open"),
            std::string::npos);
  for (const std::string& test : clean_tests())
    EXPECT_EQ(cases[test].problem, "") << test << " was flagged:\n" << describe(r);

  // The module fixture's leak, judged when its module ended: reported on the
  // last test's teardown (where its scope ended), and named as the fixture's.
  const Case& last = cases["test_module_forgotten.py::test_forgotten_last"];
  EXPECT_NE(last.problem.find("connleak: fixture forgotten_conn (module) of "
                              "test_module_forgotten.py::test_forgotten_first: 1 connection(s) "
                              "left open (judged when its scope ended, after this test)"),
            std::string::npos)
      << last.problem;
  EXPECT_EQ(last.problem.find("connleak: test_module_forgotten.py::test_forgotten_last:"),
            std::string::npos)
      << last.problem;
  EXPECT_NE(last.problem.find(frame_text("forgotten_conn", suite_file("test_module_forgotten.py"),
                                         "LEAK-MODULE-FIXTURE")),
            std::string::npos)
      << last.problem;

  // The terminal summary lists the same, test by test.
  EXPECT_NE(r.out.find("connleak: connections and pool checkouts left open"), std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("test_sync.py::test_allowed_one: 1 connection(s) left open (1 allowed by "
                       "@pytest.mark.connleak) [allowed]"),
            std::string::npos)
      << r.out;
  EXPECT_EQ(r.out.find("test_sync.py::test_ignored:"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("connleak: 7 test(s)/fixture(s) leaked\n"), std::string::npos) << r.out;

  // The exit report: each leaked connection/checkout carries its context.
  const json& rep = report_of(r);
  auto one = [&](const char* list, const std::string& test) {
    auto found = opened_by(rep, list, test);
    EXPECT_EQ(found.size(), 1u) << list << " of " << test << "\n" << rep.dump(2);
    return found.empty() ? json() : found[0];
  };
  json leak = one("connections", "test_sync.py::test_leaks_psycopg2");
  EXPECT_EQ(leak.value("status", ""), "leaked");
  EXPECT_FALSE(context_of(leak).contains("fixture")) << leak.dump(2);
  EXPECT_TRUE(
      acquired_at(leak, "test_leaks_psycopg2", suite_file("test_sync.py"), "LEAK-PSYCOPG2"));
  json fixture_leak = one("connections", "test_sync.py::test_uses_leaky_fixture");
  EXPECT_EQ(context_of(fixture_leak), json({{"test", "test_sync.py::test_uses_leaky_fixture"},
                                            {"fixture", "leaky_fixture"},
                                            {"scope", "function"}}));
  json module_leak = one("connections", "test_module_forgotten.py::test_forgotten_first");
  EXPECT_EQ(context_of(module_leak),
            json({{"test", "test_module_forgotten.py::test_forgotten_first"},
                  {"fixture", "forgotten_conn"},
                  {"scope", "module"}}));
  EXPECT_TRUE(acquired_at(module_leak, "forgotten_conn", suite_file("test_module_forgotten.py"),
                          "LEAK-MODULE-FIXTURE"));
  // Markers change the verdict, not the facts: the ignored test's connection is still there.
  EXPECT_EQ(one("connections", "test_sync.py::test_ignored").value("status", ""), "leaked");
  EXPECT_TRUE(opened_by(rep, "connections", "test_sync.py::test_param[False]").empty());
  EXPECT_TRUE(opened_by(rep, "connections", "test_module_fixture.py::test_shared_first").empty());

  json session = one("checkouts", "test_sqlalchemy.py::test_session_not_closed");
  EXPECT_TRUE(session.value("status", "") == "leaked" || session.value("status", "") == "reclaimed")
      << session.dump(2);
  EXPECT_TRUE(acquired_at(session, "test_session_not_closed", suite_file("test_sqlalchemy.py"),
                          "LEAK-SESSION"));
  json acquire = one("checkouts", "test_asyncpg.py::test_async_leaks_acquire");
  EXPECT_EQ(acquire.value("status", ""), "leaked");
  EXPECT_TRUE(acquired_at(acquire, "test_async_leaks_acquire", suite_file("test_asyncpg.py"),
                          "LEAK-ACQUIRE"));
  for (const json& co : rep.at("checkouts")) {
    if (co.value("status", "") == "leaked" || co.value("status", "") == "reclaimed") {
      EXPECT_TRUE(flagged_tests().count(context_of(co).value("test", ""))) << co.dump(2);
    }
  }
  // The text report says the same.
  EXPECT_NE(r.err.find("test test_sync.py::test_leaks_psycopg2"), std::string::npos) << r.err;
}

TEST(PytestPlugin, WithoutConnleakFailTheLeaksAreListedAndNoTestFails) {
  Scratch scratch;
  const std::string junit = scratch.path("junit.xml");
  Result r = run(pytest_argv("/usr/bin/python3", junit,
                             {"--connleak", suite_file("test_sync.py") + "::test_leaks_psycopg2",
                              suite_file("test_sync.py") + "::test_clean"}),
                 {.env = suite_env(hooks_dir())});
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  EXPECT_NE(r.out.find("test_sync.py::test_leaks_psycopg2: 1 connection(s) left open"),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("(not failed: use --connleak-fail)"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("test_sync.py::test_clean:"), std::string::npos) << r.out;
}

TEST(PytestPlugin, OffUnlessAskedForAndLoadableWithDashP) {
  Scratch scratch;
  const std::string junit = scratch.path("junit.xml");
  const std::string leak = suite_file("test_sync.py") + "::test_leaks_psycopg2";
  // Loaded through its entry point but not asked for: nothing happens.
  Result off = run(pytest_argv("/usr/bin/python3", junit, {leak}), {.env = suite_env(hooks_dir())});
  ASSERT_EQ(off.exit_code, 0) << describe(off);
  EXPECT_EQ(off.out.find("connleak:"), std::string::npos) << off.out;
  EXPECT_EQ(off.out.find("left open"), std::string::npos) << off.out;
  EXPECT_EQ(opened_by(report_of(off), "connections", "test_sync.py::test_leaks_psycopg2").size(),
            0u);

  // Entry points off: --connleak is unknown (the canary) until -p loads the plugin.
  auto env = suite_env(hooks_dir());
  env.push_back({"PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1"});
  Result unknown = run(pytest_argv("/usr/bin/python3", junit, {"--connleak", leak}), {.env = env});
  EXPECT_EQ(unknown.exit_code, 4) << describe(unknown);  // pytest's usage error
  Result by_p =
      run(pytest_argv("/usr/bin/python3", junit,
                      {"-p", "connleak.pytest_plugin", "--connleak", "--connleak-fail", leak}),
          {.env = env});
  EXPECT_EQ(by_p.exit_code, 1) << describe(by_p);
  EXPECT_NE(junit_cases(junit)["test_sync.py::test_leaks_psycopg2"].problem.find(
                "connleak: test_sync.py::test_leaks_psycopg2: 1 connection(s) left open"),
            std::string::npos)
      << describe(by_p);

  // Without the shim: one warning, and the suite runs as usual.
  Result no_shim = run(pytest_argv("/usr/bin/python3", junit, {"--connleak", leak}),
                       {.env = suite_env(hooks_dir()), .preload = false});
  EXPECT_EQ(no_shim.exit_code, 0) << describe(no_shim);
  EXPECT_NE(no_shim.out.find("connleak: --connleak needs libconnleak.so in the process"),
            std::string::npos)
      << describe(no_shim);
}

TEST(PytestPlugin, ThresholdFlagsACheckoutHeldLongerThanDInsideATest) {
  Scratch scratch;
  const std::string junit = scratch.path("junit.xml");
  const std::vector<std::string> tests = {
      suite_file("test_sqlalchemy.py") + "::test_session_closed",
      suite_file("test_sync.py") + "::test_clean"};
  // Any checkout is held longer than a microsecond: flagged, though returned.
  std::vector<std::string> args = {"--connleak", "--connleak-fail", "--connleak-threshold",
                                   "0.000001"};
  args.insert(args.end(), tests.begin(), tests.end());
  Result tiny = run(pytest_argv("/usr/bin/python3", junit, args), {.env = suite_env(hooks_dir())});
  EXPECT_EQ(tiny.exit_code, 1) << describe(tiny);
  auto cases = junit_cases(junit);
  const std::string& problem = cases["test_sqlalchemy.py::test_session_closed"].problem;
  EXPECT_NE(
      problem.find("connleak: test_sqlalchemy.py::test_session_closed: a pool checkout held "),
      std::string::npos)
      << problem;
  EXPECT_NE(problem.find(frame_text("test_session_closed", suite_file("test_sqlalchemy.py"),
                                    "scalar() == 1")),
            std::string::npos)
      << problem;
  EXPECT_EQ(cases["test_sync.py::test_clean"].problem, "");  // no checkout at all

  // The same checkout under an hour's threshold: clean.
  args[3] = "1h";
  Result hour = run(pytest_argv("/usr/bin/python3", junit, args), {.env = suite_env(hooks_dir())});
  EXPECT_EQ(hour.exit_code, 0) << describe(hour);
  EXPECT_EQ(junit_cases(junit)["test_sqlalchemy.py::test_session_closed"].problem, "");
}

TEST(PytestPlugin, ConnleakRunTurnsItOnAndFailOnNeverOnlyReports) {
  Scratch scratch;
  const std::string junit = scratch.path("junit.xml");
  const std::vector<std::string> tests = {suite_file("test_sync.py") + "::test_leaks_psycopg2",
                                          suite_file("test_sync.py") + "::test_clean"};
  auto under_run = [&](const std::vector<std::string>& run_flags) {
    std::vector<std::string> argv{CONNLEAK_CLI_PATH, "run"};
    argv.insert(argv.end(), run_flags.begin(), run_flags.end());
    argv.push_back("--");
    for (const std::string& a : pytest_argv("/usr/bin/python3", junit, tests)) argv.push_back(a);
    return run(argv, {.env = {{"PYTHONDONTWRITEBYTECODE", "1"}}, .preload = false});
  };
  Result failing = under_run({});
  EXPECT_EQ(failing.exit_code, 1) << describe(failing);  // pytest's own status: a test failed
  auto cases = junit_cases(junit);
  EXPECT_NE(cases["test_sync.py::test_leaks_psycopg2"].problem.find(
                "connleak: test_sync.py::test_leaks_psycopg2: 1 connection(s) left open"),
            std::string::npos)
      << describe(failing);
  EXPECT_EQ(cases["test_sync.py::test_clean"].problem, "") << describe(failing);

  Result reporting = under_run({"--fail-on", "never"});
  EXPECT_EQ(reporting.exit_code, 0) << describe(reporting);
  EXPECT_EQ(junit_cases(junit)["test_sync.py::test_leaks_psycopg2"].problem, "");
  EXPECT_NE(reporting.out.find("test_sync.py::test_leaks_psycopg2: 1 connection(s) left open"),
            std::string::npos)
      << describe(reporting);
}

// pytest-xdist (Debian's python3-pytest-xdist): `-p xdist -n 2` under
// `connleak run`. Each worker is its own process with its own exit report;
// the verdicts reach the controller's JUnit XML, the summary its terminal,
// and `connleak run`'s merged summary names every leaking test; the exit
// status is the one the same suite has without xdist.
TEST(PytestPlugin, XdistWorkersAreEachTheirOwnProcessAndTheMergeNamesTheTests) {
  Result probe = run({"/usr/bin/python3", "-c", "import xdist"}, {.preload = false});
  if (probe.exit_code != 0)
    GTEST_SKIP() << "pytest-xdist is not installed (Debian: python3-pytest-xdist): " << probe.err;
  Scratch scratch;
  auto under_run = [&](const std::string& junit, const std::string& reports,
                       const std::vector<std::string>& extra) {
    std::vector<std::string> argv{CONNLEAK_CLI_PATH, "run", "--report-dir", reports, "--"};
    std::vector<std::string> args = extra;
    args.push_back(kSuite);
    for (const std::string& a : pytest_argv("/usr/bin/python3", junit, args)) argv.push_back(a);
    return run(argv, {.env = {{"PYTHONDONTWRITEBYTECODE", "1"}}, .preload = false});
  };
  Result plain = under_run(scratch.path("plain.xml"), scratch.path("plain"), {});
  Result xdist =
      under_run(scratch.path("xdist.xml"), scratch.path("xdist"), {"-p", "xdist", "-n", "2"});
  EXPECT_EQ(plain.exit_code, 1) << describe(plain);  // pytest: leaking tests failed
  EXPECT_EQ(xdist.exit_code, plain.exit_code) << describe(xdist);

  // The same verdicts, test by test.
  auto cases = junit_cases(scratch.path("xdist.xml"));
  ASSERT_EQ(cases.size(), flagged_tests().size() + clean_tests().size() + 1) << describe(xdist);
  for (const auto& [test, where] : flagged_tests()) {
    EXPECT_NE(cases[test].problem.find("connleak: " + test + ": "), std::string::npos)
        << test << cases[test].problem;
    EXPECT_NE(
        cases[test].problem.find(frame_text(where.function, suite_file(where.file), where.marker)),
        std::string::npos)
        << test << cases[test].problem;
  }
  for (const std::string& test : clean_tests())
    EXPECT_EQ(cases[test].problem, "") << test << " was flagged:\n" << describe(xdist);

  // The controller's terminal summary has every worker's leaks: the six
  // tests, and the module fixture once per worker that ran tests of its
  // module (xdist's load scheduling may split a module between workers).
  std::smatch total;
  ASSERT_TRUE(std::regex_search(
      xdist.out, total, std::regex(R"(connleak: ([0-9]+) test\(s\)/fixture\(s\) leaked\n)")))
      << xdist.out;
  std::size_t fixture_lines = 0;
  for (std::size_t at = xdist.out.find("\nfixture forgotten_conn (module) of ");
       at != std::string::npos;
       at = xdist.out.find("\nfixture forgotten_conn (module) of ", at + 1))
    ++fixture_lines;
  EXPECT_GE(fixture_lines, 1u) << xdist.out;
  EXPECT_EQ(std::stoul(total[1].str()), flagged_tests().size() + fixture_lines) << xdist.out;
  for (const auto& [test, where] : flagged_tests())
    EXPECT_NE(xdist.out.find("\n" + test + ": "), std::string::npos) << test << "\n" << xdist.out;

  // Two workers, two processes, two exit reports (the controller opens no
  // connection and writes none); each leak is in exactly one of them.
  std::vector<json> reports;
  std::set<int> pids;
  for (const std::string& name : list_reports(scratch.path("xdist"))) {
    if (!std::regex_match(name, std::regex(R"(connleak\.[0-9]+\.json)"))) continue;
    std::ifstream in(scratch.path("xdist") + "/" + name);
    reports.push_back(json::parse(in));
    pids.insert(reports.back().at("pid").get<int>());
  }
  EXPECT_EQ(reports.size(), 2u) << describe(xdist);
  EXPECT_EQ(pids.size(), reports.size());
  std::map<std::string, int> reported_in;  // test -> how many reports list its leak
  for (const json& rep : reports) {
    std::set<std::string> here;
    for (const char* list : {"connections", "checkouts"})
      for (const json& e : rep.at(list))
        if (e.value("status", "") == "leaked" || e.value("status", "") == "reclaimed")
          here.insert(context_of(e).value("test", ""));
    for (const std::string& test : here) ++reported_in[test];
  }
  for (const auto& [test, where] : flagged_tests()) {
    EXPECT_EQ(reported_in[test], 1) << test;
    // `connleak run`'s merged summary names the test by its node id ("test
    // <id>", or "fixture NAME (SCOPE) of <id>" for what its fixture opened).
    EXPECT_TRUE(xdist.err.find(", test " + test + ",") != std::string::npos ||
                xdist.err.find(" of " + test + ",") != std::string::npos ||
                xdist.err.find(", test " + test + ")") != std::string::npos ||
                xdist.err.find(" of " + test + ")") != std::string::npos)
        << test << "\n"
        << xdist.err;
  }
}

// pyenv's interpreters with Debian's dist-packages (pure-Python drivers
// only: Debian's C extensions are built for 3.11).
class PytestOnPyenv : public ::testing::TestWithParam<const char*> {
 protected:
  void SetUp() override {
    const char* root_env = getenv("PYENV_ROOT");
    const char* home = getenv("HOME");
    std::string root = root_env ? root_env : std::string(home ? home : "/root") + "/.pyenv";
    std::string pattern = root + "/versions/" + GetParam() + "*/bin/python3";
    glob_t g{};
    if (glob(pattern.c_str(), 0, nullptr, &g) == 0 && g.gl_pathc > 0)
      python_ = g.gl_pathv[g.gl_pathc - 1];
    globfree(&g);
    if (python_.empty())
      GTEST_SKIP() << "no Python " << GetParam() << " under pyenv (" << pattern
                   << " matches nothing)";
    Result probe = run({python_, "-c", "import pytest, pymysql, sqlalchemy"},
                       {.env = suite_env(kDist), .preload = false});
    if (probe.exit_code != 0)
      GTEST_SKIP() << "pytest or the pure-Python drivers do not import from Debian's "
                      "dist-packages on Python "
                   << GetParam() << ": " << probe.err;
  }
  static constexpr const char* kDist = "/usr/lib/python3/dist-packages";
  std::string python_;
};

TEST_P(PytestOnPyenv, LeakingTestsFailCleanOnesPass) {
  Scratch scratch;
  const std::string junit = scratch.path("junit.xml");
  const std::string suite = std::string(CONNLEAK_E2E_PYTEST_SUITE) + "_pure";
  std::vector<std::string> argv = {python_,
                                   "-m",
                                   "pytest",
                                   "-p",
                                   "no:cacheprovider",
                                   "--junitxml=" + junit,
                                   "-q",
                                   "--rootdir=" + suite,
                                   "--connleak",
                                   "--connleak-fail",
                                   suite};
  Result r = run(argv, {.env = suite_env(hooks_dir() + ":" + kDist)});
  ASSERT_EQ(r.exit_code, 1) << describe(r);
  auto cases = junit_cases(junit);
  ASSERT_EQ(cases.size(), 4u) << describe(r);
  const std::string file = suite + "/test_pure.py";
  EXPECT_NE(cases["test_pure.py::test_pymysql_leak"].problem.find(
                "connleak: test_pure.py::test_pymysql_leak: 1 connection(s) left open"),
            std::string::npos)
      << describe(r);
  EXPECT_NE(cases["test_pure.py::test_pymysql_leak"].problem.find(
                frame_text("test_pymysql_leak", file, "LEAK-PYMYSQL")),
            std::string::npos)
      << describe(r);
  EXPECT_NE(cases["test_pure.py::test_session_not_closed"].problem.find(
                frame_text("test_session_not_closed", file, "LEAK-SESSION")),
            std::string::npos)
      << describe(r);
  EXPECT_EQ(cases["test_pure.py::test_pymysql_clean"].problem, "") << describe(r);
  EXPECT_EQ(cases["test_pure.py::test_session_closed"].problem, "") << describe(r);
}

INSTANTIATE_TEST_SUITE_P(Python, PytestOnPyenv, ::testing::Values("3.12", "3.13"),
                         [](const auto& info) {
                           return std::string(info.param).replace(1, 1, "");
                         });

}  // namespace
}  // namespace e2e
