// Pool checkouts: Python programs using SQLAlchemy, asyncpg, aiomysql and
// psycopg_pool pools, run under the shim with connleak's Python hooks
// (python/sitecustomize.py, from the build tree's share/connleak/python) on
// PYTHONPATH, as `connleak run` sets it. Each leak test has its canary in the
// same run: the leaked checkout must be named at its line while the pool's
// idle connections must not be leaks.
#include <glob.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "tests/e2e/harness.h"

namespace e2e {
namespace {

json field(const json& j, const std::string& path) {
  json::json_pointer p(path);
  return j.contains(p) ? j.at(p) : json();
}

// A Python interpreter: Debian's, or one under pyenv that imports Debian's
// dist-packages (pure-Python drivers only: the C extensions are built for 3.11).
struct Interpreter {
  std::string label, path;
  std::vector<std::pair<std::string, std::string>> env;
};

Interpreter debian() {
  return {"3.11 (Debian)", "/usr/bin/python3", {}};
}

// pyenv's `versions/<minor>*`; empty path with the reason when there is none.
Interpreter pyenv(const std::string& minor, std::string* why) {
  const char* root_env = getenv("PYENV_ROOT");
  const char* home = getenv("HOME");
  std::string root = root_env ? root_env : std::string(home ? home : "/root") + "/.pyenv";
  std::string pattern = root + "/versions/" + minor + "*/bin/python3";
  glob_t g{};
  Interpreter in{minor + " (pyenv)", "", {{"CONNLEAK_PY_DIST", "/usr/lib/python3/dist-packages"}}};
  if (glob(pattern.c_str(), 0, nullptr, &g) == 0 && g.gl_pathc > 0)
    in.path = g.gl_pathv[g.gl_pathc - 1];
  globfree(&g);
  if (in.path.empty())
    *why = "no Python " + minor + " under pyenv (" + pattern + " matches nothing)";
  return in;
}

std::string hooks_dir() {
  return CONNLEAK_E2E_PY_HOOKS_DIR;
}

// The program under the shim with the hooks on PYTHONPATH (the one extra
// variable the README documents for plain LD_PRELOAD), then the interpreter's
// own extra path.
RunOptions with_hooks(const Interpreter& in, RunOptions options = {}) {
  std::string path = hooks_dir();
  for (const auto& [k, v] : in.env)
    if (k == "CONNLEAK_PY_DIST") path += ":" + v;
  options.env.push_back({"PYTHONPATH", path});
  return options;
}

Result python(const Interpreter& in, const std::string& name,
              const std::vector<std::string>& args = {}, const RunOptions& options = {}) {
  std::vector<std::string> argv{in.path, script(name)};
  argv.insert(argv.end(), args.begin(), args.end());
  return run(argv, with_hooks(in, options));
}

std::vector<json> checkouts_with(const json& report, const std::string& status) {
  std::vector<json> out;
  if (report.contains("checkouts"))
    for (const json& c : report.at("checkouts"))
      if (c.value("status", "") == status) out.push_back(c);
  return out;
}

std::uint64_t checkout_summary(const json& report, const char* key) {
  json v = field(report, std::string("/summary/checkouts/") + key);
  return v.is_number() ? v.get<std::uint64_t>() : ~0ull;
}

bool names(const json& co, const std::string& function, const std::string& file,
           const std::string& marker) {
  return python_names(field(co, "/acquired/python"), function, file, line_of(file, marker));
}

std::string at_line(const std::string& function, const std::string& file,
                    const std::string& marker) {
  return " in " + function + " " + file + ":" + std::to_string(line_of(file, marker));
}

// The one pool of the report, of `kind`.
json pool_of_kind(const json& report, const std::string& kind) {
  if (report.contains("pools"))
    for (const json& p : report.at("pools"))
      if (p.value("kind", "") == kind) return p;
  return json();
}

// Every connection of the report lent to no open/leaked checkout is idle in
// its pool: status "pooled", never "leaked".
void expect_idle_connections_pooled(const json& report, const json& leaked_checkout,
                                    std::size_t pooled) {
  std::size_t seen = 0;
  for (const json& c : report.at("connections")) {
    if (c.at("id") == field(leaked_checkout, "/connection")) continue;
    EXPECT_NE(c.at("status"), "leaked") << c.dump(2);
    seen += c.at("status") == "pooled";
  }
  EXPECT_EQ(seen, pooled) << report.dump(2);
  // summary.pooled counts every connection of the pool, the lent one too.
  EXPECT_EQ(field(report, "/summary/pooled"), pooled + 1) << report.dump(2);
}

// The dump file written for `trigger` (connleak.<pid>.<n>.json), if any.
std::optional<json> dump_with_trigger(const Result& r, const std::string& trigger) {
  std::vector<json> found = reports_with_trigger(r, trigger);
  if (found.empty()) return std::nullopt;
  return found.front();
}

// --- asyncpg: the first case ---

TEST(PythonPool, AsyncpgLeakedAcquireIsNamedAtItsLineIdleConnectionsArePooled) {
  std::string file = script("pool_asyncpg.py");
  Result r = python(debian(), "pool_asyncpg.py", {"leak"});
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  const json& rep = report_of(r);
  auto leaked = checkouts_with(rep, "leaked");
  ASSERT_EQ(leaked.size(), 1u) << describe(r);
  EXPECT_TRUE(names(leaked[0], "delete_notification_user", file, "LEAK-LINE")) << leaked[0].dump(2);
  EXPECT_TRUE(names(leaked[0], "get_connection", file, "ACQUIRE-LINE")) << leaked[0].dump(2);
  EXPECT_EQ(field(leaked[0], "/task"), "Task-1") << leaked[0].dump(2);
  EXPECT_EQ(checkout_summary(rep, "taken"), 6u);
  EXPECT_EQ(checkout_summary(rep, "returned"), 5u);
  EXPECT_EQ(checkout_summary(rep, "leaked"), 1u);
  json pool = pool_of_kind(rep, "asyncpg.Pool");
  ASSERT_FALSE(pool.is_null()) << rep.dump(2);
  EXPECT_EQ(field(pool, "/max_size"), 4);
  EXPECT_EQ(field(leaked[0], "/pool"), field(pool, "/id"));
  // min_size=2: the other connection idles in the pool; create_pool is no leak site.
  expect_idle_connections_pooled(rep, leaked[0], 1);
  EXPECT_NE(r.err.find(at_line("delete_notification_user", file, "LEAK-LINE")), std::string::npos)
      << r.err;
}

TEST(PythonPool, AsyncpgHoldingTaskIsNamedInADump) {
  std::string file = script("pool_asyncpg.py");
  // Dumps are opt-in since the shim starts no thread unless asked (issue 20).
  Session s({"/usr/bin/python3", file, "hold"},
            with_hooks(debian(), {.options = "dump_signal=12"}));
  ASSERT_TRUE(s.wait_out("holding")) << s.err();
  ASSERT_EQ(kill(s.pid(), SIGUSR2), 0);
  ASSERT_TRUE(s.wait_err("connleak: dump (signal)")) << s.err();
  auto dump = read_report(s.report_dir() + "/connleak." + std::to_string(s.pid()) + ".1.json");
  s.send("go");
  Result r = s.finish();
  ASSERT_TRUE(dump) << describe(r);
  auto open = checkouts_with(*dump, "open");
  ASSERT_EQ(open.size(), 1u) << dump->dump(2);
  EXPECT_EQ(field(open[0], "/task"), "notify-worker") << open[0].dump(2);
  EXPECT_TRUE(names(open[0], "delete_notification_user", file, "LEAK-LINE")) << open[0].dump(2);
  // What the holding task does now: suspended in wait_for_operator, its
  // coroutine chain read under the GIL (not the checkout stack again).
  EXPECT_TRUE(python_names(field(open[0], "/holder_now/python"), "wait_for_operator", file,
                           line_of(file, "AWAIT-LINE")))
      << open[0].dump(2);
  EXPECT_NE(s.err().find("the holder, asyncio task notify-worker, is doing now:"),
            std::string::npos)
      << s.err();
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  EXPECT_EQ(checkout_summary(report_of(r), "leaked"), 0u) << describe(r);
  EXPECT_EQ(checkout_summary(report_of(r), "returned"), 6u) << describe(r);
}

// --- SQLAlchemy: the second and third cases, and the GC path ---

void expect_sqlalchemy_leak(const Interpreter& in, const std::string& driver) {
  std::string file = script("pool_sqlalchemy.py");
  Result r = python(in, "pool_sqlalchemy.py", {driver, "leak"});
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  const json& rep = report_of(r);
  auto leaked = checkouts_with(rep, "leaked");
  ASSERT_EQ(leaked.size(), 1u) << describe(r);
  EXPECT_TRUE(names(leaked[0], "export_report", file, "LEAK-LINE")) << leaked[0].dump(2);
  EXPECT_EQ(checkout_summary(rep, "taken"), 7u);
  EXPECT_EQ(checkout_summary(rep, "leaked"), 1u);
  EXPECT_FALSE(pool_of_kind(rep, "sqlalchemy.QueuePool").is_null()) << rep.dump(2);
  // The first connection, opened by handle_request and idle at exit, is the pool's.
  expect_idle_connections_pooled(rep, leaked[0], 1);
  EXPECT_NE(r.err.find(at_line("export_report", file, "LEAK-LINE")), std::string::npos) << r.err;
}

TEST(PythonPool, SqlalchemyPsycopg2SessionNeverClosedIsNamedEngineNeverDisposedIsNot) {
  expect_sqlalchemy_leak(debian(), "pg");
}

TEST(PythonPool, SqlalchemyPymysqlSessionNeverClosedIsNamedEngineNeverDisposedIsNot) {
  expect_sqlalchemy_leak(debian(), "mysql");
}

TEST(PythonPool, SqlalchemyCheckoutReclaimedByTheGarbageCollectorIsALeakAtItsLine) {
  std::string file = script("pool_sqlalchemy.py");
  Result r = python(debian(), "pool_sqlalchemy.py", {"pg", "gc"});
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  const json& rep = report_of(r);
  auto reclaimed = checkouts_with(rep, "reclaimed");
  ASSERT_EQ(reclaimed.size(), 1u) << describe(r);
  EXPECT_TRUE(names(reclaimed[0], "checkout_and_forget", file, "GC-LINE")) << reclaimed[0].dump(2);
  EXPECT_EQ(checkout_summary(rep, "leaked"), 1u) << describe(r);
  // Its connection went back to the pool: nothing is leaked at connection level.
  EXPECT_TRUE(with_status(rep, "leaked").empty()) << describe(r);
}

// `connleak run` (which sets PYTHONPATH itself): the clean app exits 0, the
// same app with one unclosed Session fails with 23 naming its line.
TEST(PythonPool, ConnleakRunPassesTheCleanAppThatNeverDisposesItsEngine) {
  std::string file = script("pool_sqlalchemy.py");
  for (const char* mode : {"clean", "leak"}) {
    char dir_template[] = "/tmp/connleak-e2e-run-XXXXXX";
    ASSERT_TRUE(mkdtemp(dir_template));
    Result r = run({bin("connleak"), "run", "--report-dir", dir_template, "--", "/usr/bin/python3",
                    file, "pg", mode},
                   {.preload = false});
    std::vector<std::string> reports = list_reports(dir_template);
    ASSERT_EQ(reports.size(), 1u) << describe(r);
    auto rep = read_report(std::string(dir_template) + "/" + reports[0]);
    ASSERT_TRUE(rep) << describe(r);
    if (std::string(mode) == "clean") {
      EXPECT_EQ(r.exit_code, 0) << describe(r);
      EXPECT_EQ(checkout_summary(*rep, "taken"), 6u) << rep->dump(2);
      EXPECT_EQ(checkout_summary(*rep, "returned"), 6u) << rep->dump(2);
      EXPECT_EQ(field(*rep, "/summary/leaked"), 0) << rep->dump(2);
      EXPECT_EQ(field(*rep, "/summary/pooled"), 1) << rep->dump(2);
    } else {
      EXPECT_EQ(r.exit_code, 23) << describe(r);
      EXPECT_NE(r.err.find(at_line("export_report", file, "LEAK-LINE")), std::string::npos)
          << r.err;
    }
    std::filesystem::remove_all(dir_template);
  }
}

void expect_queuepool_exhausted(const Interpreter& in, const std::string& driver) {
  std::string file = script("pool_sqlalchemy_exhausted.py");
  Result r = python(in, "pool_sqlalchemy_exhausted.py", {driver});
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  EXPECT_NE(r.out.find("timeout QueuePool limit of size 2 overflow 0 reached"), std::string::npos)
      << r.out;
  auto snap = dump_with_trigger(r, "pool_exhausted");
  ASSERT_TRUE(snap) << describe(r);
  auto open = checkouts_with(*snap, "open");
  ASSERT_EQ(open.size(), 2u) << snap->dump(2);
  const json& a = names(open[0], "hold_device_a", file, "HOLD-A-LINE") ? open[0] : open[1];
  const json& b = &a == &open[0] ? open[1] : open[0];
  EXPECT_TRUE(names(a, "hold_device_a", file, "HOLD-A-LINE")) << a.dump(2);
  EXPECT_TRUE(names(b, "hold_device_b", file, "HOLD-B-LINE")) << b.dump(2);
  EXPECT_NE(field(a, "/thread"), field(b, "/thread"));
  // Each holder is waiting in wait_for_release, called from its own function.
  int wait_line = line_of(file, "HOLDER-WAIT-LINE");
  EXPECT_TRUE(python_names(field(a, "/holder_now/python"), "wait_for_release", file, wait_line))
      << a.dump(2);
  EXPECT_TRUE(python_names(field(b, "/holder_now/python"), "wait_for_release", file, wait_line))
      << b.dump(2);
  // The text snapshot shows both stacks (not one per opening site).
  EXPECT_NE(r.err.find(at_line("hold_device_a", file, "HOLD-A-LINE")), std::string::npos) << r.err;
  EXPECT_NE(r.err.find(at_line("hold_device_b", file, "HOLD-B-LINE")), std::string::npos) << r.err;
  // Both came back; the engine was disposed: a clean exit.
  const json& rep = report_of(r);
  EXPECT_EQ(checkout_summary(rep, "leaked"), 0u) << describe(r);
  EXPECT_TRUE(with_status(rep, "leaked").empty()) << describe(r);
}

TEST(PythonPool, SqlalchemyQueuePoolExhaustedSnapshotNamesBothHolders) {
  expect_queuepool_exhausted(debian(), "pg");
}

// --- aiomysql and psycopg_pool: leak, dry pool ---

TEST(PythonPool, AiomysqlLeakedAcquireNamedAndDryPoolSnapshotted) {
  std::string file = script("pool_aiomysql.py");
  Result r = python(debian(), "pool_aiomysql.py");
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  ASSERT_NE(r.out.find("timeout"), std::string::npos) << r.out;
  const json& rep = report_of(r);
  auto leaked = checkouts_with(rep, "leaked");
  ASSERT_EQ(leaked.size(), 1u) << describe(r);
  EXPECT_TRUE(names(leaked[0], "delete_notification_user", file, "LEAK-LINE")) << leaked[0].dump(2);
  EXPECT_FALSE(pool_of_kind(rep, "aiomysql.Pool").is_null()) << rep.dump(2);
  expect_idle_connections_pooled(rep, leaked[0], 1);
  auto snap = dump_with_trigger(r, "pool_exhausted");
  ASSERT_TRUE(snap) << describe(r);
  auto open = checkouts_with(*snap, "open");
  ASSERT_EQ(open.size(), 2u) << snap->dump(2);
  EXPECT_TRUE(names(open[0], "delete_notification_user", file, "LEAK-LINE") ||
              names(open[1], "delete_notification_user", file, "LEAK-LINE"))
      << snap->dump(2);
  EXPECT_TRUE(names(open[0], "hold_device_b", file, "HOLD-B-LINE") ||
              names(open[1], "hold_device_b", file, "HOLD-B-LINE"))
      << snap->dump(2);
}

void expect_psycopg_pool(const Interpreter& in) {
  std::string file = script("pool_psycopg.py");
  Result r = python(in, "pool_psycopg.py");
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  ASSERT_NE(r.out.find("timeout"), std::string::npos) << r.out;
  const json& rep = report_of(r);
  auto leaked = checkouts_with(rep, "leaked");
  ASSERT_EQ(leaked.size(), 1u) << describe(r);
  EXPECT_TRUE(names(leaked[0], "export_report", file, "LEAK-LINE")) << leaked[0].dump(2);
  EXPECT_FALSE(pool_of_kind(rep, "psycopg_pool.ConnectionPool").is_null()) << rep.dump(2);
  expect_idle_connections_pooled(rep, leaked[0], 1);
  auto snap = dump_with_trigger(r, "pool_exhausted");
  ASSERT_TRUE(snap) << describe(r);
  EXPECT_EQ(checkouts_with(*snap, "open").size(), 2u) << snap->dump(2);
}

TEST(PythonPool, PsycopgPoolLeakedGetconnNamedAndPoolTimeoutSnapshotted) {
  expect_psycopg_pool(debian());
}

// --- an asyncio holder's suspended stack ---

// The pool (one connection) is held by task report-task, suspended in
// slow_report on an asyncio.Event; another acquire times out. The snapshot
// shows the holder where it is suspended, not only where it took the
// connection; the event is then set and nothing leaks (the canary of the
// run: the checkout must come back, counted as returned).
void expect_suspended_holder_in_snapshot(const Interpreter& in, const std::string& driver) {
  std::string file = script("pool_async_holder.py");
  Result r = python(in, "pool_async_holder.py", {driver, "exhaust"});
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  ASSERT_NE(r.out.find("timeout"), std::string::npos) << r.out;
  auto snap = dump_with_trigger(r, "pool_exhausted");
  ASSERT_TRUE(snap) << describe(r);
  auto open = checkouts_with(*snap, "open");
  ASSERT_EQ(open.size(), 1u) << snap->dump(2);
  EXPECT_EQ(field(open[0], "/task"), "report-task") << open[0].dump(2);
  EXPECT_TRUE(names(open[0], "slow_report", file, "ACQUIRE-LINE")) << open[0].dump(2);
  EXPECT_TRUE(python_names(field(open[0], "/holder_now/python"), "slow_report", file,
                           line_of(file, "SUSPEND-LINE")))
      << open[0].dump(2);
  EXPECT_NE(r.err.find("the holder, asyncio task report-task, is doing now:"), std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find(at_line("slow_report", file, "SUSPEND-LINE")), std::string::npos) << r.err;
  const json& rep = report_of(r);
  EXPECT_EQ(checkout_summary(rep, "leaked"), 0u) << describe(r);
  EXPECT_EQ(checkout_summary(rep, "returned"), 1u) << describe(r);
}

// checkout_threshold: the warning shows the suspended holder too, and the
// exit report keeps it with the flagged checkout.
void expect_suspended_holder_in_alert(const Interpreter& in, const std::string& driver) {
  std::string file = script("pool_async_holder.py");
  std::string where = at_line("slow_report", file, "OPERATOR-LINE");
  Session s({in.path, file, driver, "threshold"},
            with_hooks(in, {.options = "checkout_threshold=200ms"}));
  ASSERT_TRUE(s.wait_out("holding")) << s.err();
  ASSERT_TRUE(s.wait_err("(checkout_threshold)")) << s.err();
  ASSERT_TRUE(s.wait_err(where)) << s.err();
  EXPECT_NE(s.err().find("the holder, asyncio task report-task, is doing now:"), std::string::npos)
      << s.err();
  s.send("go");
  Result r = s.finish();
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  EXPECT_NE(r.err.find("returned after"), std::string::npos) << r.err;
  auto returned = checkouts_with(report_of(r), "returned");
  ASSERT_EQ(returned.size(), 1u) << describe(r);
  EXPECT_EQ(field(returned[0], "/alerts/0/kind"), "checkout_held") << returned[0].dump(2);
  EXPECT_TRUE(python_names(field(returned[0], "/holder_now/python"), "slow_report", file,
                           line_of(file, "OPERATOR-LINE")))
      << returned[0].dump(2);
}

TEST(PythonPool, AsyncpgExhaustionSnapshotShowsTheSuspendedHoldingTask) {
  expect_suspended_holder_in_snapshot(debian(), "asyncpg");
}

TEST(PythonPool, AiomysqlExhaustionSnapshotShowsTheSuspendedHoldingTask) {
  expect_suspended_holder_in_snapshot(debian(), "aiomysql");
}

TEST(PythonPool, AsyncpgCheckoutThresholdShowsTheSuspendedHoldingTask) {
  expect_suspended_holder_in_alert(debian(), "asyncpg");
}

TEST(PythonPool, AiomysqlCheckoutThresholdShowsTheSuspendedHoldingTask) {
  expect_suspended_holder_in_alert(debian(), "aiomysql");
}

// --- the pure-Python paths on the pyenv interpreters ---

class PoolOnPyenv : public ::testing::TestWithParam<const char*> {
 protected:
  void SetUp() override {
    std::string why;
    in_ = pyenv(GetParam(), &why);
    if (in_.path.empty()) GTEST_SKIP() << why;
  }
  Interpreter in_;
};

TEST_P(PoolOnPyenv, SqlalchemyPymysqlLeak) {
  expect_sqlalchemy_leak(in_, "mysql");
}

TEST_P(PoolOnPyenv, SqlalchemyPymysqlQueuePoolExhausted) {
  expect_queuepool_exhausted(in_, "mysql");
}

TEST_P(PoolOnPyenv, AiomysqlLeak) {
  std::string file = script("pool_aiomysql.py");
  Result r = python(in_, "pool_aiomysql.py");
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  auto leaked = checkouts_with(report_of(r), "leaked");
  ASSERT_EQ(leaked.size(), 1u) << describe(r);
  EXPECT_TRUE(names(leaked[0], "delete_notification_user", file, "LEAK-LINE")) << leaked[0].dump(2);
  EXPECT_TRUE(dump_with_trigger(r, "pool_exhausted")) << describe(r);
}

TEST_P(PoolOnPyenv, AiomysqlExhaustionSnapshotShowsTheSuspendedHoldingTask) {
  expect_suspended_holder_in_snapshot(in_, "aiomysql");
}

TEST_P(PoolOnPyenv, AiomysqlCheckoutThresholdShowsTheSuspendedHoldingTask) {
  expect_suspended_holder_in_alert(in_, "aiomysql");
}

TEST_P(PoolOnPyenv, PsycopgPoolThroughCtypesLibpq) {
  // Debian's psycopg 3.1.7 needs a typing_extensions that newer interpreters reject.
  Result probe = run({in_.path, "-c", "import psycopg_pool"}, with_hooks(in_, {.preload = false}));
  if (probe.exit_code != 0) {
    std::string last = probe.err.substr(probe.err.rfind('\n', probe.err.size() - 2) + 1);
    GTEST_SKIP() << "Debian's psycopg 3 does not import on Python " << GetParam() << ": " << last;
  }
  expect_psycopg_pool(in_);
}

INSTANTIATE_TEST_SUITE_P(Python, PoolOnPyenv, ::testing::Values("3.12", "3.13"),
                         [](const auto& info) {
                           return std::string(info.param).replace(1, 1, "");
                         });

// --- the hooks themselves ---

TEST(PoolHooks, ChainToTheNextSitecustomizeAndImportNothingWithoutAPool) {
  char dir_template[] = "/tmp/connleak-e2e-site-XXXXXX";
  ASSERT_TRUE(mkdtemp(dir_template));
  std::string dir = dir_template;
  std::ofstream(dir + "/sitecustomize.py") << "print('user sitecustomize ran', flush=True)\n";
  std::string code =
      "import sys\n"
      "print('modules', sorted(m for m in sys.modules if m.startswith('connleak') or m in "
      "('ctypes', "
      "'asyncio', 'sqlalchemy')))\n";
  Result r =
      run({"/usr/bin/python3", "-c", code}, {.env = {{"PYTHONPATH", hooks_dir() + ":" + dir}}});
  std::filesystem::remove_all(dir);
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  EXPECT_NE(r.out.find("user sitecustomize ran\n"), std::string::npos) << r.out;
  // Nothing but the bootstrap: no ctypes, no pool module, no adapter.
  EXPECT_NE(r.out.find("modules ['connleak', 'connleak._bootstrap']\n"), std::string::npos)
      << r.out;
}

TEST(PoolHooks, WithoutTheShimNothingIsHookedAndNothingIsPrinted) {
  std::string code =
      "import sys, sqlalchemy.pool, asyncpg.pool, aiomysql.pool, psycopg_pool\n"
      "print('adapters', sorted(m for m in sys.modules if m.startswith('connleak.adapters.')))\n"
      "print('finders', [type(f).__name__ for f in sys.meta_path if 'PostImport' in "
      "type(f).__name__])\n";
  Result r = run({"/usr/bin/python3", "-c", code},
                 {.env = {{"PYTHONPATH", hooks_dir()}}, .preload = false});
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  EXPECT_NE(r.out.find("adapters []\nfinders []\n"), std::string::npos) << r.out;
  EXPECT_EQ(r.err, "");
  // The canary: the same imports under the shim load all four adapters.
  Result hooked = run({"/usr/bin/python3", "-c", code}, {.env = {{"PYTHONPATH", hooks_dir()}}});
  EXPECT_NE(hooked.out.find("adapters ['connleak.adapters.aiomysql', 'connleak.adapters.asyncpg', "
                            "'connleak.adapters.psycopg_pool', 'connleak.adapters.sqlalchemy']\n"),
            std::string::npos)
      << describe(hooked);
}

}  // namespace
}  // namespace e2e
