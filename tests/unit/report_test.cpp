#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "collector/report/format/report_json.h"
#include "collector/report/format/report_text.h"
#include "collector/report/report_builder.h"

namespace connleak {
namespace {

Frame native(std::uint64_t addr, const char* fn, const char* file, int line, const char* module) {
  Frame f;
  f.address = addr;
  f.function = fn;
  if (file) f.file = file;
  if (file) f.line = line;
  f.module = module;
  return f;
}

Connection leaked(std::uint64_t id, const char* handle, std::vector<Frame> stack) {
  Connection c;
  c.id = id;
  c.library = ConnLibrary::kLibpq;
  c.handle = handle;
  c.target = "host=127.0.0.1 port=5432 dbname=app user=app";
  c.status = ConnStatus::kLeaked;
  c.state = "connected";
  c.age_seconds = 12.5;
  c.opened_at = "2026-11-21T10:00:00.000Z";
  c.thread = 4242;
  c.client_module = "/usr/lib/x86_64-linux-gnu/libpq.so.5.15";
  c.acquired.native = std::move(stack);
  return c;
}

Report sample() {
  Report r;
  r.version = "0.1.0";
  r.pid = 1234;
  r.ppid = 1;
  r.argv = {"./service", "--port", "8080"};
  r.trigger = Trigger::kExit;
  r.generated_at = "2026-11-21T10:00:12.500Z";
  std::vector<Frame> site_a = {
      native(0x401136, "open_report_conn", "/src/app.c", 42, "/src/service"),
      native(0x4011a0, "main", "/src/app.c", 90, "/src/service")};
  std::vector<Frame> site_b = {native(0x401200, "cache_warmup", nullptr, 0, "/src/service")};
  r.connections.push_back(leaked(3, "0x55d0c0ffee00", site_b));
  r.connections.push_back(leaked(7, "0x55d0c0ffef00", site_a));
  r.connections.push_back(leaked(9, "0x55d0c0fff000", site_a));
  r.connections[2].state = "failed";
  Connection dc = leaked(11, "0x55d0c0fff100", site_b);
  dc.status = ConnStatus::kClosed;
  dc.state = "closed";
  dc.closed_at = "2026-11-21T10:00:05.000Z";
  dc.alerts.push_back({AlertKind::kDoubleClose, 3.0});
  dc.closed_from =
      Stacks{{native(0x401300, "first_close", "/src/app.c", 60, "/src/service")}, std::nullopt};
  dc.closed_again_from =
      Stacks{{native(0x401400, "second_close", "/src/app.c", 70, "/src/service")}, std::nullopt};
  dc.closed_again_at = "2026-11-21T10:00:06.000Z";
  r.connections.push_back(dc);
  // The summary follows from the connections (plus the 6 clean closes that a
  // report does not list), so the assertions below cannot agree with a number
  // typed twice.
  constexpr std::uint64_t kClosedCleanly = 6;
  for (const Connection& c : r.connections) {
    if (c.status == ConnStatus::kLeaked) ++r.summary.leaked;
    if (!c.alerts.empty()) ++r.summary.flagged;
    for (const AlertInfo& a : c.alerts)
      r.summary.double_closes += a.kind == AlertKind::kDoubleClose;
  }
  r.summary.open = r.summary.leaked;
  r.summary.closed = kClosedCleanly + (r.connections.size() - r.summary.leaked);
  r.summary.opened = r.summary.open + r.summary.closed;
  return r;
}

// Distinct opening stacks among the leaked connections of `r`.
std::size_t leak_sites(const Report& r) {
  std::vector<std::vector<std::uint64_t>> sites;
  for (const Connection& c : r.connections) {
    if (c.status != ConnStatus::kLeaked) continue;
    std::vector<std::uint64_t> stack;
    for (const Frame& f : c.acquired.native) stack.push_back(f.address.value_or(0));
    if (std::find(sites.begin(), sites.end(), stack) == sites.end()) sites.push_back(stack);
  }
  return sites.size();
}

std::string read(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Golden file: CONNLEAK_UPDATE_GOLDEN=1 rewrites it after an intended change.
TEST(ReportText, MatchesGoldenFile) {
  std::string path = std::string(CONNLEAK_SOURCE_DIR) + "/tests/unit/golden/leak_report.txt";
  std::string text = render_text(sample());
  if (std::getenv("CONNLEAK_UPDATE_GOLDEN")) std::ofstream(path) << text;
  EXPECT_EQ(text, read(path));
}

TEST(ReportText, LargestSiteFirstAndOneSummaryLine) {
  std::string text = render_text(sample());
  std::size_t two = text.find("connleak: 2 connection(s) never closed, opened from:");
  std::size_t one = text.find("connleak: 1 connection(s) never closed, opened from:");
  ASSERT_NE(two, std::string::npos);
  ASSERT_NE(one, std::string::npos);
  EXPECT_LT(two, one);
  EXPECT_EQ(text.find("SUMMARY:"), text.rfind("SUMMARY:"));
  Report r = sample();
  std::string summary = "SUMMARY: connleak: " + std::to_string(r.summary.leaked) +
                        " leaked connection(s) from " + std::to_string(leak_sites(r)) + " site(s)";
  EXPECT_NE(text.find(summary), std::string::npos) << summary << "\n" << text;
}

TEST(ReportText, CleanReportIsOneLineOrNothing) {
  Report r = sample();
  r.connections.clear();
  r.summary = {.opened = 4, .closed = 4};
  EXPECT_EQ(render_text(r),
            "connleak: no leaks: 4 connection(s) opened, 4 closed (./service --port 8080)\n");
  EXPECT_EQ(render_text(r, {.clean_line = false}), "");
}

TEST(ReportText, PythonFramesLead) {
  Report r = sample();
  Frame py;
  py.function = "get_conn";
  py.file = "app/db.py";
  py.line = 17;
  r.connections[0].acquired.script = std::vector<Frame>{py};
  std::string text = render_text(r);
  EXPECT_NE(text.find("Python stack:\n      #0 in get_conn app/db.py:17"), std::string::npos)
      << text;
}

TEST(ReportText, ManyHandlesAreCapped) {
  Report r = sample();
  for (int i = 0; i < 20; ++i) r.connections.push_back(r.connections[1]);
  std::string text = render_text(r);
  EXPECT_NE(text.find("... and 17 more"), std::string::npos) << text;
}

// The streamed file parses to exactly the DOM form, stacks shared or not.
TEST(ReportJson, StreamedTextEqualsTheDom) {
  Report r = sample();
  Connection with_txn = r.connections[1];
  with_txn.id = 12;
  TransactionInfo txn;
  txn.state = "in_transaction";
  txn.seconds = 2.5;
  Frame py;
  py.function = "begin_here";
  py.file = "app.py";
  py.line = 3;
  txn.began =
      Stacks{{native(0x401500, "exec", "/src/app.c", 12, "/src/service")}, std::vector<Frame>{py}};
  with_txn.transaction = txn;
  with_txn.server_id = 4242;
  r.connections.push_back(with_txn);
  Connection idle = r.connections[0];
  idle.id = 13;
  idle.transaction = TransactionInfo{"idle", 0, std::nullopt};
  r.connections.push_back(idle);
  r.suppressions_used.push_back({"cache_*", "connleak.supp:2", 4});
  EXPECT_EQ(nlohmann::json::parse(to_json_text(r)), to_json(r));
  Report empty = sample();
  empty.connections.clear();
  EXPECT_EQ(nlohmann::json::parse(to_json_text(empty)), to_json(empty));
}

// Extension (shared stacks): past 1,000 connections each repeated stack is
// written once in full and then by reference; reading it back gives the same
// report as the all-in-place form, and the file is a fraction of its size.
TEST(ReportJson, LargeReportsShareRepeatedStacksAndReadBackTheSame) {
  Report r = sample();
  const Report small = r;
  const Connection closed = r.connections[3];  // double close: three stacks
  Connection with_txn = r.connections[1];
  for (int depth = 0; depth < 20; ++depth)  // as deep as a real stack
    with_txn.acquired.native.push_back(
        native(0x402000 + depth, "helper", "/src/lib.c", depth, "/src/service"));
  TransactionInfo txn;
  txn.state = "in_transaction";
  txn.began = Stacks{{native(0x401500, "exec", "/src/app.c", 12, "/src/service")}, std::nullopt};
  with_txn.transaction = txn;
  r.connections.clear();
  for (std::uint64_t id = 1; id <= 1200; ++id) {
    Connection c = id % 3 == 0 ? closed : with_txn;
    c.id = id;
    r.connections.push_back(c);
  }
  const std::string text = to_json_text(r);
  const nlohmann::json doc = nlohmann::json::parse(text);
  const std::string inline_form = to_json(r).dump();
  EXPECT_LT(text.size() * 2, inline_form.size());
  // The first use of each stack is in place; later ones name an entry of "stacks".
  ASSERT_TRUE(doc.contains("stacks"));
  EXPECT_EQ(doc["stacks"].size(), 5u);  // two sites, began, first close, close again
  EXPECT_TRUE(doc["connections"][0]["acquired"].contains("native"));
  EXPECT_TRUE(doc["connections"][3]["acquired"].contains("stack"));
  EXPECT_TRUE(doc["connections"][3]["transaction"]["began"].contains("stack"));
  EXPECT_EQ(to_json(report_from_json(doc)), to_json(r));
  // At 1,000 connections or fewer, nothing changes: every stack in place.
  EXPECT_EQ(nlohmann::json::parse(to_json_text(small)), to_json(small));
  r.connections.resize(1000);
  EXPECT_FALSE(nlohmann::json::parse(to_json_text(r)).contains("stacks"));
}

TEST(ReportJson, AReferenceToAMissingSharedStackIsOneClearError) {
  nlohmann::json doc = to_json(sample());
  doc["connections"][0]["acquired"] = {{"stack", 5}};
  try {
    report_from_json(doc);
    FAIL() << "accepted a reference to nothing";
  } catch (const std::invalid_argument& e) {
    EXPECT_STREQ(e.what(), "\"stack\": 5 names no entry of \"stacks\"");
  }
  doc["stacks"] = {{"5", {{"native", nlohmann::json::array()}}}};
  EXPECT_NO_THROW(report_from_json(doc));
}

TEST(ReportJson, RoundTripsExactly) {
  nlohmann::json once = to_json(sample());
  nlohmann::json twice = to_json(report_from_json(once));
  EXPECT_EQ(once, twice);
}

TEST(ReportJson, HasContractFields) {
  nlohmann::json j = to_json(sample());
  for (const char* k : {"tool", "version", "pid", "ppid", "argv", "trigger", "generated_at",
                        "summary", "connections"})
    EXPECT_TRUE(j.contains(k)) << k;
  for (const char* k : {"opened", "closed", "open", "leaked", "flagged"})
    EXPECT_TRUE(j["summary"].contains(k)) << k;
  const auto& c = j["connections"][0];
  for (const char* k : {"id", "library", "handle", "target", "status", "age_seconds", "opened_at",
                        "closed_at", "thread", "alerts", "acquired"})
    EXPECT_TRUE(c.contains(k)) << k;
  EXPECT_TRUE(c["closed_at"].is_null());
  const auto& f = c["acquired"]["native"][0];
  EXPECT_EQ(f["address"], "0x401200");
  EXPECT_TRUE(f["file"].is_null());
  EXPECT_TRUE(f["line"].is_null());
  EXPECT_FALSE(c["acquired"].contains("python"));  // not a Python host
}

TEST(ReportJson, RejectsForeignDocuments) {
  EXPECT_THROW(report_from_json(nlohmann::json::parse(R"({"tool":"other"})")), std::exception);
  EXPECT_THROW(report_from_json(nlohmann::json::parse(R"([1,2])")), std::exception);
}

__attribute__((noinline)) void symbolize_me_please() {
  asm volatile("");
}

TEST(Symbolizer, NamesFunctionFileAndLine) {
  Symbolizer s;
  // A return address one byte past the function start resolves inside it.
  auto addr = reinterpret_cast<std::uintptr_t>(&symbolize_me_please) + 1;
  Frame f = s.resolve(addr);
  ASSERT_TRUE(f.function);
  EXPECT_NE(f.function->find("symbolize_me_please"), std::string::npos) << *f.function;
  ASSERT_TRUE(f.module);
  EXPECT_NE(f.module->find("unit_tests"), std::string::npos) << *f.module;
  ASSERT_TRUE(f.file);
  EXPECT_NE(f.file->find("report_test.cpp"), std::string::npos) << *f.file;
  EXPECT_TRUE(f.line);
}

TEST(ReportBuilder, StatusDependsOnTriggerAndInheritedIsTheParents) {
  Snapshot snap;
  ConnRecord mine;
  mine.id = 1;
  mine.handle = 0x10;
  mine.opened = now();
  ConnRecord inherited = mine;
  inherited.id = 2;
  inherited.handle = 0x20;
  inherited.inherited = true;
  snap.open = {mine, inherited};
  snap.counters.opened = 1;
  Symbolizer sym;
  ProcessInfo proc{42, 1, {"prog"}};
  Report at_exit = build_report(snap, "exit", proc, sym, nullptr);
  ASSERT_EQ(at_exit.connections.size(), 1u);
  EXPECT_EQ(at_exit.connections[0].status, ConnStatus::kLeaked);
  EXPECT_EQ(at_exit.connections[0].handle, "0x10");
  EXPECT_EQ(at_exit.summary.leaked, 1u);
  EXPECT_EQ(at_exit.summary.inherited, 1u);
  Report dump = build_report(snap, "signal", proc, sym, [](const ConnRecord&) {
    return HandleState{"connected", 77};
  });
  ASSERT_EQ(dump.connections.size(), 2u);
  EXPECT_EQ(dump.connections[0].status, ConnStatus::kOpen);
  EXPECT_EQ(dump.connections[0].state, "connected");
  EXPECT_EQ(dump.connections[0].server_id, 77);
  EXPECT_EQ(dump.summary.leaked, 0u);
}

TEST(ReportBuilder, CommandLinePasswordsAreRedacted) {
  const std::string secret = "hunter2-xyz";
  auto out = redact_argv({"/usr/bin/mysql", "-p" + secret, "--password=" + secret, "-h", "db"});
  auto pq = redact_argv(
      {"psql", "host=db password=" + secret + " user=u", "postgresql://u:" + secret + "@db/app"});
  for (const auto& argv : {out, pq})
    for (const std::string& a : argv) EXPECT_EQ(a.find(secret), std::string::npos) << a;
  EXPECT_EQ(out[3], "-h");
  EXPECT_EQ(out[4], "db");
  EXPECT_EQ(current_process().pid, getpid());
}

// Issue 20, item 4: the spellings the first scrubber missed.
TEST(ReportBuilder, CommandLinePasswordsInEveryFlagSpellingAreRedacted) {
  const std::string secret = "s3cr3t-Q";
  auto out = redact_argv({"./app", "--password", secret, "--passwd", secret, "--pgpassword", secret,
                          "-p" + secret, "--db-pass=" + secret,
                          "{\"password\": \"" + secret + "\", \"user\": \"u\"}", "--no-password",
                          "-h", "db"});
  for (const std::string& a : out) EXPECT_EQ(a.find(secret), std::string::npos) << a;
  EXPECT_EQ(out[1], "--password");
  EXPECT_EQ(out[2], "***");
  EXPECT_EQ(out[7], "-p***");
  EXPECT_EQ(out[8], "--db-pass=***");
  EXPECT_NE(out[9].find("\"user\": \"u\""), std::string::npos) << out[9];
  // psql's --password prompts; a flag after it is not its value, nor is one after --no-password.
  EXPECT_EQ(out[11], "-h");
  EXPECT_EQ(out[12], "db");
  auto prompt = redact_argv({"psql", "--password", "-h", "db"});
  EXPECT_EQ(prompt[2], "-h");
}

}  // namespace
}  // namespace connleak
