// Pool checkouts through the public C API (include/connleak/connleak.h) with
// real libpq connections as keys: programs/pool_host.c is a pool written in C,
// doing what python/connleak's adapters do through ctypes.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <string>

#include "tests/e2e/harness.h"

namespace e2e {
namespace {

std::string host() {
  return bin("pool_host");
}

std::string source() {
  std::string here = __FILE__;
  return here.substr(0, here.rfind('/')) + "/programs/pool_host.c";
}

// The native frame of `function` in a checkout's stack, or null.
const json* frame_of(const json& stacks, const std::string& function) {
  for (const json& f : stacks.at("native"))
    if (f.at("function") == function) return &f;
  return nullptr;
}

std::vector<json> checkouts_with(const json& report, const std::string& status) {
  std::vector<json> out;
  for (const json& c : report.at("checkouts"))
    if (c.at("status") == status) out.push_back(c);
  return out;
}

// The leaked checkout is named at its line; the idle pool connections are
// "pooled", not leaked (the canary: the leaked checkout in the same run).
TEST(Pools, LeakedCheckoutNamedAtItsLineIdlePooledConnectionsAreNot) {
  Result r = run({host(), "pool 5", "open 0", "open 1", "open 2", "clean 0", "clean 1", "clean 0",
                  "leak 2", "exit"});
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  const json& rep = report_of(r);
  const json& s = rep.at("summary");
  EXPECT_EQ(s.at("leaked"), 0) << rep.dump(2);
  EXPECT_EQ(s.at("pooled"), 3);
  EXPECT_EQ(s.at("checkouts").at("taken"), 4);
  EXPECT_EQ(s.at("checkouts").at("returned"), 3);
  EXPECT_EQ(s.at("checkouts").at("leaked"), 1);
  EXPECT_EQ(with_status(rep, "pooled").size(), 3u);
  EXPECT_EQ(with_status(rep, "leaked").size(), 0u);
  ASSERT_EQ(rep.at("pools").size(), 1u);
  const json& pool = rep.at("pools").at(0);
  EXPECT_EQ(pool.at("kind"), "c.TestPool");
  EXPECT_EQ(pool.at("max_size"), 5);
  EXPECT_EQ(pool.at("connections"), 3);
  EXPECT_EQ(pool.at("checked_out"), 1);
  auto leaked = checkouts_with(rep, "leaked");
  ASSERT_EQ(leaked.size(), 1u) << rep.dump(2);
  const json& c = leaked.at(0);
  EXPECT_EQ(c.at("pool"), pool.at("id"));
  // Linked to the third connection's record.
  EXPECT_EQ(c.at("connection"), with_status(rep, "pooled").at(2).at("id"));
  EXPECT_TRUE(c.at("returned_at").is_null());
  EXPECT_EQ(c.at("in_transaction"), false);
  const json* f = frame_of(c.at("acquired"), "leaky_request");
  ASSERT_NE(f, nullptr) << c.dump(2);
  EXPECT_EQ(f->at("line"), line_of(source(), "leaky_request takes")) << f->dump();
  // The clean requests' checkouts were returned and stay in the timeline.
  EXPECT_EQ(checkouts_with(rep, "returned").size(), 3u);
  // Text: the checkout stack, and the pool's idle connections at low severity.
  EXPECT_NE(r.err.find("1 checkout(s) never returned to their pool"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("leaky_request"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("pool not disposed: 2 idle connection(s) in c.TestPool"), std::string::npos)
      << r.err;
  // The pool's name carried a password: scrubbed before it was kept.
  EXPECT_EQ(r.err.find("hunter2"), std::string::npos) << r.err;
  EXPECT_EQ(r.report_text.find("hunter2"), std::string::npos);
}

// A program that returns every checkout and never disposes its pool passes
// `connleak run`; the same program leaking one checkout fails it (canary).
TEST(Pools, UndisposedPoolPassesConnleakRunALeakedCheckoutFailsIt) {
  RunOptions plain;
  plain.preload = false;
  Result clean = run({CONNLEAK_CLI_PATH, "run", "--", host(), "pool 2", "open 0", "open 1",
                      "clean 0", "clean 1", "exit"},
                     plain);
  EXPECT_EQ(clean.exit_code, 0) << describe(clean);
  EXPECT_NE(clean.err.find("pool not disposed: 2 idle connection(s)"), std::string::npos)
      << clean.err;
  Result leaky = run({CONNLEAK_CLI_PATH, "run", "--", host(), "pool 2", "open 0", "open 1",
                      "clean 0", "leak 1", "exit"},
                     plain);
  EXPECT_EQ(leaky.exit_code, 23) << describe(leaky);
  EXPECT_NE(leaky.err.find("leaky_request"), std::string::npos) << leaky.err;
}

// A checkout reclaimed by a finalizer is a leak naming its checkout stack.
TEST(Pools, ReclaimedCheckoutIsALeak) {
  Result r =
      run({host(), "pool 2", "open 0", "open 1", "hold_a 0", "reclaim 0", "clean 1", "exit"});
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  EXPECT_NE(r.out.find("reclaim -> 0"), std::string::npos) << r.out;
  const json& rep = report_of(r);
  auto reclaimed = checkouts_with(rep, "reclaimed");
  ASSERT_EQ(reclaimed.size(), 1u) << rep.dump(2);
  EXPECT_NE(frame_of(reclaimed[0].at("acquired"), "hold_device_a"), nullptr);
  EXPECT_FALSE(reclaimed[0].at("returned_at").is_null());
  EXPECT_EQ(rep.at("summary").at("checkouts").at("leaked"), 1);
  EXPECT_EQ(checkouts_with(rep, "returned").size(), 1u);  // the clean one is not
  EXPECT_NE(r.err.find("garbage collector reclaimed it while checked out"), std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("reclaimed the connection while it was checked out"), std::string::npos)
      << r.err;
}

// checkout_threshold: one warning per checkout, naming the holder, the pool and
// the transaction; "returned after" when it comes back; a clean checkout
// returned in time never alerts.
TEST(Pools, CheckoutThresholdWarnsOnceThenReturnedAfter) {
  Session s({host()}, {.options = "checkout_threshold=300ms"});
  ASSERT_TRUE(s.command("pool 2"));
  ASSERT_TRUE(s.command("open 0"));
  ASSERT_TRUE(s.command("open 1"));
  ASSERT_TRUE(s.command("clean 1"));
  ASSERT_TRUE(s.command("begin 0"));
  ASSERT_TRUE(s.command("hold_a 0"));
  ASSERT_TRUE(s.wait_err("flagged checkout_held after")) << s.err();
  const std::string alert = s.err();
  EXPECT_NE(alert.find("1 checkout(s) held for more than 0.3s (checkout_threshold)"),
            std::string::npos)
      << alert;
  EXPECT_NE(alert.find("hold_device_a"), std::string::npos) << alert;
  EXPECT_NE(alert.find("of c.TestPool"), std::string::npos) << alert;
  EXPECT_NE(alert.find(", in transaction"), std::string::npos) << alert;
  ASSERT_TRUE(s.command("commit 0"));
  ASSERT_TRUE(s.command("return 0"));
  ASSERT_TRUE(s.wait_err("returned after")) << s.err();
  s.send("exit");
  Result r = s.finish();
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  EXPECT_EQ(count(r.err, "(checkout_threshold)"), 1) << r.err;
  EXPECT_EQ(count(r.err, "returned after"), 1) << r.err;
  const json& rep = report_of(r);
  auto returned = checkouts_with(rep, "returned");
  ASSERT_EQ(returned.size(), 2u) << rep.dump(2);
  int flagged = 0;
  for (const json& c : returned) {
    if (c.at("alerts").empty()) continue;
    ++flagged;
    EXPECT_EQ(c.at("alerts").at(0).at("kind"), "checkout_held");
    EXPECT_GE(c.at("alerts").at(0).at("after_seconds").get<double>(), 0.3);
    EXPECT_EQ(c.at("in_transaction"), true);
    EXPECT_GE(c.at("held_seconds").get<double>(), 0.3);
    EXPECT_NE(frame_of(c.at("acquired"), "hold_device_a"), nullptr);
  }
  EXPECT_EQ(flagged, 1);
}

// The pool ran dry: one snapshot naming both holders, each at its own line;
// a second call within the interval is rate-limited.
TEST(Pools, ExhaustionSnapshotNamesBothHolders) {
  Result r = run({host(), "pool 2", "open 0", "open 1", "open 2", "hold_a 0", "begin 1", "hold_b 1",
                  "exhausted", "exhausted", "commit 1", "return 0", "return 1", "exit"});
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  EXPECT_NE(r.out.find("exhausted -> 0"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("exhausted -> 1"), std::string::npos) << r.out;  // rate-limited
  EXPECT_EQ(count(r.err, "snapshot (pool_exhausted)"), 1) << r.err;
  std::vector<json> snapshots = reports_with_trigger(r, "pool_exhausted");
  ASSERT_EQ(snapshots.size(), 1u) << describe(r);
  const json& snap = snapshots[0];
  EXPECT_EQ(snap.at("snapshot").at("waited_seconds"), 2.5);
  ASSERT_EQ(snap.at("checkouts").size(), 2u) << snap.dump(2);
  const json& a = snap.at("checkouts").at(0);
  const json& b = snap.at("checkouts").at(1);
  const json* fa = frame_of(a.at("acquired"), "hold_device_a");
  const json* fb = frame_of(b.at("acquired"), "hold_device_b");
  ASSERT_NE(fa, nullptr) << a.dump(2);
  ASSERT_NE(fb, nullptr) << b.dump(2);
  EXPECT_EQ(fa->at("line"), line_of(source(), "hold_device_a takes"));
  EXPECT_EQ(fb->at("line"), line_of(source(), "hold_device_b takes"));
  EXPECT_EQ(a.at("in_transaction"), false);
  EXPECT_EQ(b.at("in_transaction"), true);
  for (const json& c : {a, b}) EXPECT_EQ(c.at("status"), "open");
  // The text names both, each with its own stack.
  EXPECT_NE(r.err.find("hold_device_a"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("hold_device_b"), std::string::npos) << r.err;
  // Both returned by the end: no leak at exit.
  EXPECT_EQ(report_of(r).at("summary").at("checkouts").at("leaked"), 0);
}

// A throwaway cluster with max_connections=4: the connect it refuses
// (SQLSTATE 53300) produces one server_refused snapshot of the open connections.
class SmallCluster {
 public:
  SmallCluster() {
    char dir[] = "/tmp/connleak-small-pg-XXXXXX";
    if (!mkdtemp(dir)) return;
    dir_ = dir;
    std::string cmd = "CONNLEAK_PG_MAX_CONNECTIONS=4 " + script_path() + " start " + dir_ + " >" +
                      dir_ + ".log 2>&1";
    ok_ = std::system(cmd.c_str()) == 0;
  }
  ~SmallCluster() {
    if (dir_.empty()) return;
    std::string cmd = script_path() + " stop " + dir_ + " >/dev/null 2>&1";
    (void)std::system(cmd.c_str());
    unlink((dir_ + ".log").c_str());
  }
  bool ok() const { return ok_; }
  std::string conninfo() const {
    std::ifstream in(dir_ + "/env");
    std::string line;
    const std::string key = "CONNLEAK_TEST_PG_CONNINFO=";
    while (std::getline(in, line))
      if (line.rfind(key, 0) == 0) {
        std::string v = line.substr(key.size());
        if (v.size() >= 2 && v.front() == '\'' && v.back() == '\'') v = v.substr(1, v.size() - 2);
        return v;
      }
    return "";
  }

 private:
  static std::string script_path() {
    std::string here = __FILE__;
    return here.substr(0, here.rfind("/tests/")) + "/scripts/pg-server.sh";
  }
  std::string dir_;
  bool ok_ = false;
};

TEST(Pools, ServerRefusalWritesOneSnapshot) {
  SmallCluster cluster;
  ASSERT_TRUE(cluster.ok()) << "could not start the max_connections=4 cluster";
  RunOptions o;
  o.env = {{"CONNLEAK_TEST_PG_CONNINFO", cluster.conninfo()}};
  // Two refusals in one run: the second is within the interval (one snapshot).
  Result r = run({host(), "pool 2", "open 0", "hold_a 0", "refuse 10", "refuse 10", "return 0",
                  "close 0", "exit"},
                 o);
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  EXPECT_EQ(count(r.out, "refused"), 2) << r.out;
  EXPECT_EQ(count(r.err, "snapshot (server_refused)"), 1) << r.err;
  EXPECT_NE(r.err.find("53300"), std::string::npos) << r.err;
  std::vector<json> snapshots = reports_with_trigger(r, "server_refused");
  ASSERT_EQ(snapshots.size(), 1u) << describe(r);
  const json& snap = snapshots[0];
  EXPECT_NE(snap.at("snapshot").at("refusal").get<std::string>().find("53300"), std::string::npos);
  // Every connection open then: the pooled one and those opened before the refusal.
  std::size_t open = with_status(snap, "open").size();
  EXPECT_GE(open, 2u) << snap.dump(2);
  // The checkout holding the pooled connection is in it, with its stack.
  auto held = checkouts_with(snap, "open");
  ASSERT_EQ(held.size(), 1u);
  EXPECT_NE(frame_of(held[0].at("acquired"), "hold_device_a"), nullptr);
}

// The non-blocking connect (PQconnectStart + PQconnectPoll, psycopg 3's way):
// the server's refusal is read during a poll, and that is where it is noted.
TEST(Pools, ServerRefusalDuringANonBlockingConnectWritesOneSnapshot) {
  SmallCluster cluster;
  ASSERT_TRUE(cluster.ok()) << "could not start the max_connections=4 cluster";
  RunOptions o;
  o.env = {{"CONNLEAK_TEST_PG_CONNINFO", cluster.conninfo()}};
  Result r = run({host(), "pool 2", "open 0", "hold_a 0", "refuse_async 10", "refuse_async 10",
                  "return 0", "close 0", "exit"},
                 o);
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  EXPECT_EQ(count(r.out, "refuse_async opened"), 2) << r.out;
  EXPECT_EQ(count(r.out, " refused\n"), 2) << r.out;
  EXPECT_EQ(count(r.err, "snapshot (server_refused)"), 1) << r.err;
  std::vector<json> snapshots = reports_with_trigger(r, "server_refused");
  ASSERT_EQ(snapshots.size(), 1u) << describe(r);
  const json& snap = snapshots[0];
  EXPECT_NE(snap.at("snapshot").at("refusal").get<std::string>().find("53300"), std::string::npos);
  // The pooled connection and the non-blocking ones opened before the refusal.
  EXPECT_GE(with_status(snap, "open").size(), 2u) << snap.dump(2);
  auto held = checkouts_with(snap, "open");
  ASSERT_EQ(held.size(), 1u);
  EXPECT_NE(frame_of(held[0].at("acquired"), "hold_device_a"), nullptr);
  // The connections the refusal's snapshot lists were opened by the
  // non-blocking path, named at it.
  int async_opened = 0;
  for (const json& c : with_status(snap, "open"))
    if (frame_of(c.at("acquired"), "open_until_refused_async")) ++async_opened;
  EXPECT_GE(async_opened, 1) << snap.dump(2);
}

// MySQL: the server refuses for want of slots (ER_USER_LIMIT_REACHED, 1226,
// from an account's MAX_USER_CONNECTIONS 2 on the fixture's MariaDB; 1040 and
// 1203 take the same path). Real mysqlclient (MySQLdb) through libmariadb's
// mysql_real_connect: one server_refused snapshot listing the two connections
// that hold the user's slots, each named at its Python line; the host still
// gets its error 1226 unchanged.
const char* kMysqlRefusal = R"(import os, MySQLdb
e = os.environ
kw = dict(host=e["CONNLEAK_TEST_MYSQL_HOST"], port=int(e["CONNLEAK_TEST_MYSQL_PORT"]),
          user="connleak_limited", passwd="Lim1ted-s3cret", connect_timeout=10)
held = []
def open_until_refused(n):
    for _ in range(n):
        try:
            held.append(MySQLdb.connect(**kw))  # open_until_refused connects
        except MySQLdb.OperationalError as exc:
            print("refused code=%d after %d" % (exc.args[0], len(held)), flush=True)
            return
open_until_refused(5)
open_until_refused(1)
for c in held:
    c.close()
)";

// Creates the MySQL account `user` (at most 2 connections), runs `script`
// (which connects as it until refused, twice) under the shim, and checks what
// both refusal tests share: the host sees its own error each time, one
// snapshot is written for the two refusals, and the password is in no output.
// Fills `snap` with the snapshot and `line` with the script's connecting line.
void run_until_refused(const std::string& user, const std::string& script, json& snap, int& line) {
  const std::string admin = R"(import os, sys, MySQLdb
e = os.environ
c = MySQLdb.connect(host=e["CONNLEAK_TEST_MYSQL_HOST"], port=int(e["CONNLEAK_TEST_MYSQL_PORT"]), user="root")
cur = c.cursor()
cur.execute("CREATE USER IF NOT EXISTS '%s'@'%%' IDENTIFIED BY 'Lim1ted-s3cret' WITH MAX_USER_CONNECTIONS 2" % sys.argv[1])
c.close()
print("ok")
)";
  RunOptions plain;
  plain.preload = false;
  plain.env = {{"CONNLEAK_TEST_MYSQL_HOST", mysql("HOST")},
               {"CONNLEAK_TEST_MYSQL_PORT", mysql("PORT")}};
  Result setup = run({"/usr/bin/python3", "-c", admin, user}, plain);
  ASSERT_EQ(setup.exit_code, 0) << describe(setup);

  RunOptions o;
  o.env = plain.env;
  Result r = run({"/usr/bin/python3", "-c", script}, o);
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  // The host's own view is unchanged: its error, each time.
  EXPECT_EQ(count(r.out, "refused code=1226 after 2\n"), 2) << r.out;
  // Two refusals within the interval: one snapshot.
  EXPECT_EQ(count(r.err, "snapshot (server_refused)"), 1) << r.err;
  std::vector<json> snapshots = reports_with_trigger(r, "server_refused");
  ASSERT_EQ(snapshots.size(), 1u) << describe(r);
  snap = snapshots[0];
  line = 1 + static_cast<int>(std::count(
                 script.begin(),
                 script.begin() + static_cast<long>(script.find("# open_until_refused connects")),
                 '\n'));
  EXPECT_EQ(r.report_text.find("Lim1ted-s3cret"), std::string::npos);
  EXPECT_EQ(r.err.find("Lim1ted-s3cret"), std::string::npos);
}

// How many of the snapshot's open `library` connections were made at the
// script's connecting line, in open_until_refused.
int named_at(const json& snap, const std::string& library, int line) {
  int named = 0;
  for (const json& c : with_status(snap, "open")) {
    // The refused attempt itself is in the snapshot too (state "initialized":
    // mysqlclient frees its handle only after the failure).
    if (c.value("library", "") != library) continue;
    if (library == "mysql" && c.at("state") != "connected") continue;
    for (const json& f : c.at("acquired").value("python", json::array()))
      if (f.value("function", "") == "open_until_refused" && f.value("line", 0) == line) ++named;
  }
  return named;
}

TEST(Pools, MysqlServerRefusalWritesOneSnapshot) {
  if (access("/usr/bin/python3", X_OK) != 0) GTEST_SKIP() << "no /usr/bin/python3";
  json snap;
  int line = 0;
  run_until_refused("connleak_limited", kMysqlRefusal, snap, line);
  if (HasFatalFailure()) return;
  EXPECT_NE(snap.at("snapshot").at("refusal").get<std::string>().find("1226"), std::string::npos);
  // The two connections holding the user's slots, named at the line that made them.
  EXPECT_EQ(named_at(snap, "mysql", line), 2) << snap.dump(2);
}

// The same refusal seen at the socket: PyMySQL speaks the protocol itself, so
// no client-library hook sees an error; the wire parser reads the ERR 1226
// the server sends in answer to the handshake response (collector/wire/
// wire_mysql.cpp; a full server's ERR 1040 instead of its greeting takes the
// same path, WireMysql unit tests). Its own account (limit 2), so that the
// mysqlclient test above, run in parallel, cannot take its slots.
const char* kPymysqlRefusal = R"(import os, pymysql
e = os.environ
kw = dict(host=e["CONNLEAK_TEST_MYSQL_HOST"], port=int(e["CONNLEAK_TEST_MYSQL_PORT"]),
          user="connleak_limited_py", password="Lim1ted-s3cret", connect_timeout=10)
held = []
def open_until_refused(n):
    for _ in range(n):
        try:
            held.append(pymysql.connect(**kw))  # open_until_refused connects
        except pymysql.err.OperationalError as exc:
            print("refused code=%d after %d" % (exc.args[0], len(held)), flush=True)
            return
open_until_refused(5)
open_until_refused(1)
for c in held:
    c.close()
)";

TEST(Pools, PymysqlServerRefusalAtTheSocketWritesOneSnapshot) {
  if (access("/usr/bin/python3", X_OK) != 0) GTEST_SKIP() << "no /usr/bin/python3";
  json snap;
  int line = 0;
  run_until_refused("connleak_limited_py", kPymysqlRefusal, snap, line);
  if (HasFatalFailure()) return;
  EXPECT_NE(snap.at("snapshot").at("refusal").get<std::string>().find("MySQL error 1226"),
            std::string::npos)
      << snap.dump(2);
  // The two socket connections holding the account's slots, named at their line.
  EXPECT_GE(named_at(snap, "socket", line), 2) << snap.dump(2);
}

}  // namespace
}  // namespace e2e
