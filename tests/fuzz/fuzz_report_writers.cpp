// The report writers (JSON, text, SARIF, JUnit, the alert lines) fed a report
// whose every string field holds arbitrary bytes: argv, targets, function
// names, files, modules... all come from the host and may be Latin-1, carry
// terminal escapes or forge lines. What must hold:
//   - no writer throws (the shim writes at exit, in a signal dump and from the
//     control socket: an exception there kills the host);
//   - JSON and SARIF parse back, and the JSON reads back as a report;
//   - the text report and alert lines carry no control character but newline
//     (a function named "\n\nSUMMARY: connleak: no leaks" must not forge a
//     summary; OSC sequences must not reach the terminal);
//   - JUnit is UTF-8 with only the control characters XML 1.0 allows.
//
// CONNLEAK_FUZZ_WRITERS_PENDING_UTF8_AND_CONTROL (set by tests/fuzz/CMakeLists.txt
// until issue 20's items 1 and 13 land in the writers) turns the checks that
// fail today into "do not crash": exceptions are caught and the control
// character / UTF-8 checks are skipped. Everything else is checked either way.
#include <nlohmann/json.hpp>
#include <string>

#include "collector/report/format/report_json.h"
#include "collector/report/format/report_junit.h"
#include "collector/report/format/report_sarif.h"
#include "collector/report/format/report_text.h"
#include "collector/report/report_merge.h"
#include "tests/fuzz/fuzz_input.h"

using namespace connleak;

#ifdef CONNLEAK_FUZZ_WRITERS_PENDING_UTF8_AND_CONTROL
constexpr bool kStrict = false;
#else
constexpr bool kStrict = true;
#endif

namespace {

std::optional<std::string> opt_str(fuzz::Input& in) {
  if (!in.flag()) return std::nullopt;
  return in.str(48);
}

Frame frame(fuzz::Input& in, bool native) {
  Frame f;
  if (native && in.flag()) f.address = in.u64();
  f.module = opt_str(in);
  f.function = opt_str(in);
  f.file = opt_str(in);
  if (in.flag()) f.line = static_cast<int>(in.u64(4));
  return f;
}

Stacks stacks(fuzz::Input& in) {
  Stacks s;
  for (std::size_t n = in.below(4); n > 0; --n) s.native.push_back(frame(in, true));
  if (in.flag()) {
    s.script.emplace();
    for (std::size_t n = in.below(3); n > 0; --n) s.script->push_back(frame(in, false));
  }
  return s;
}

// Finite, as every duration the shim measures is.
double seconds(fuzz::Input& in) {
  return static_cast<double>(in.u64(3)) / 16.0;
}

std::string pick(fuzz::Input& in, std::initializer_list<const char*> usual) {
  // Mostly the values the shim writes (so the renderers' branches are taken),
  // sometimes anything.
  const std::size_t i = in.below(usual.size() + 1);
  if (i < usual.size()) return usual.begin()[i];
  return in.str(24);
}

Connection connection(fuzz::Input& in, std::uint64_t id) {
  Connection c;
  c.id = id;
  c.library = pick(in, {"libpq", "mysql", "socket"});
  c.handle = in.str(24);
  c.target = in.str(64);
  c.status = pick(in, {"leaked", "open", "closed"});
  c.state = pick(in, {"connected", "failed", "connecting", "unknown"});
  c.age_seconds = seconds(in);
  c.opened_at = in.str(32);
  c.closed_at = opt_str(in);
  c.thread = static_cast<std::int64_t>(in.u64(4));
  c.resets = static_cast<std::uint32_t>(in.u64(1));
  c.client_module = in.str(32);
  for (std::size_t n = in.below(3); n > 0; --n)
    c.alerts.push_back(
        {pick(in, {"lifetime", "idle_in_transaction", "double_close"}), seconds(in)});
  c.acquired = stacks(in);
  if (in.flag()) c.closed_from = stacks(in);
  if (in.flag()) c.closed_again_from = stacks(in);
  c.closed_again_at = opt_str(in);
  if (in.flag()) c.server_id = static_cast<std::int64_t>(in.u64(4));
  if (in.flag()) c.protocol = pick(in, {"postgresql", "mysql"});
  c.closed_by = opt_str(in);
  if (in.flag()) {
    TransactionInfo t;
    t.state = pick(in, {"idle", "active", "in_transaction", "in_error", "unknown"});
    t.seconds = seconds(in);
    if (in.flag()) t.began = stacks(in);
    t.note = opt_str(in);
    c.transaction = t;
  }
  if (in.flag()) c.pid = static_cast<std::int64_t>(in.u64(3));
  return c;
}

Report report(fuzz::Input& in) {
  Report r;
  r.version = in.str(16);
  r.pid = static_cast<std::int64_t>(in.u64(3));
  r.ppid = static_cast<std::int64_t>(in.u64(3));
  for (std::size_t n = in.below(4); n > 0; --n) r.argv.push_back(in.str(48));
  r.trigger = pick(in, {"exit", "signal", "request"});
  r.generated_at = in.str(32);
  Summary& s = r.summary;
  for (std::uint64_t* v : {&s.opened, &s.closed, &s.open, &s.leaked, &s.flagged, &s.double_closes,
                           &s.unknown_closes, &s.resets, &s.inherited, &s.ignored})
    *v = in.u64(2);
  s.complete = in.flag();
  for (std::size_t n = in.below(5); n > 0; --n) r.connections.push_back(connection(in, n));
  for (std::size_t n = in.below(3); n > 0; --n)
    r.suppressions_used.push_back({in.str(32), in.str(16), in.u64(2)});
  return r;
}

template <typename F>
std::optional<std::string> run(const char* what, F&& f) {
  try {
    return f();
  } catch (const std::exception& e) {
    if (kStrict) fuzz::fail(what, e.what(), __FILE__, __LINE__);
  }
  return std::nullopt;
}

// XML 1.0 allows tab, newline and carriage return, nothing else below 0x20
// (DEL, 0x7f, is a legal XML character).
void check_junit(const std::string& xml) {
  for (const char c : xml) {
    const auto u = static_cast<unsigned char>(c);
    FUZZ_CHECK(u >= 0x20 || c == '\t' || c == '\n' || c == '\r', xml);
  }
  FUZZ_CHECK(fuzz::is_utf8(xml), xml);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  fuzz::Input in(data, size);
  const Report r = report(in);

  if (auto json = run("to_json_text threw", [&] { return to_json_text(r); })) {
    nlohmann::json doc;
    try {
      doc = nlohmann::json::parse(*json);
    } catch (const std::exception& e) {
      fuzz::fail("to_json_text wrote JSON that does not parse", e.what(), __FILE__, __LINE__);
    }
    try {
      const Report back = report_from_json(doc);
      FUZZ_CHECK(back.connections.size() == r.connections.size(), *json);
      FUZZ_CHECK(back.argv.size() == r.argv.size(), *json);
    } catch (const std::exception& e) {
      fuzz::fail("report_from_json rejected our own JSON", e.what(), __FILE__, __LINE__);
    }
  }
  if (auto text = run("render_text threw", [&] { return render_text(r); })) {
    if (kStrict) FUZZ_CHECK(!fuzz::has_control(*text, "\n"), *text);
  }
  if (!r.connections.empty()) {
    if (auto alert = run("render_alert threw", [&] {
          return render_alert(r.connections.front().alerts.empty()
                                  ? AlertKind::kLifetime
                                  : r.connections.front().alerts.front().kind.value(),
                              seconds(in), r.connections, r.connections.size() + in.below(3));
        })) {
      if (kStrict) FUZZ_CHECK(!fuzz::has_control(*alert, "\n"), *alert);
    }
  }
  SarifOptions sarif_options;
  sarif_options.source_root = in.flag() ? std::string("/src") : in.str(16);
  if (auto sarif = run("render_sarif threw", [&] { return render_sarif(r, sarif_options); })) {
    try {
      const nlohmann::json doc = nlohmann::json::parse(*sarif);
      FUZZ_CHECK(doc.is_object(), *sarif);
    } catch (const std::exception& e) {
      fuzz::fail("render_sarif wrote JSON that does not parse", e.what(), __FILE__, __LINE__);
    }
  }
  JunitOptions junit_options;
  junit_options.source_root = sarif_options.source_root;
  if (auto junit = run("render_junit threw", [&] { return render_junit(r, junit_options); })) {
    if (kStrict) check_junit(*junit);
  }
  // And once more after a merge, as `connleak report` renders it.
  if (auto merged = run("merge threw", [&] { return render_text(merge_reports({r, r})); })) {
    if (kStrict) FUZZ_CHECK(!fuzz::has_control(*merged, "\n"), *merged);
  }
  return 0;
}
