// The test-attribution calls of include/connleak/connleak.h (extension): a
// test runner names what runs now, and after each test asks what it left
// open. Called from the runner's own code between tests (pytest hooks), never
// from inside a hooked call; nothing here runs Python.
#include <algorithm>
#include <cstring>
#include <nlohmann/json.hpp>
#include <string>

#include "collector/core/checkouts.h"
#include "collector/core/contexts.h"
#include "collector/core/registry.h"
#include "collector/policy/redact.h"
#include "collector/policy/suppressions.h"
#include "collector/report/format/report_json.h"
#include "collector/report/format/report_text.h"
#include "collector/report/report_builder.h"
#include "collector/report/report_checkouts.h"
#include "collector/report/report_writer.h"
#include "connleak/connleak.h"
#include "shim/runtime/export.h"
#include "shim/runtime/guard.h"
#include "shim/runtime/runtime.h"

namespace connleak::shim {

namespace {

// A connection the context left behind: open, not the program's on purpose,
// not a pool's (an idle pooled connection is the pool's normal state; what
// the program leaks from a pool is the checkout).
bool left_open(const ConnRecord& r, std::uint32_t context) {
  return r.context == context && !r.ignored && !r.inherited && r.pool == 0;
}

double held(const CheckoutRecord& r) {
  return static_cast<double>(r.returned.mono_ns - r.checked_out.mono_ns) / 1e9;
}

bool valid_context(unsigned long long id) {
  return id > 0 && id <= ContextTable::instance().size();
}

std::int64_t scan_deadline() {
  return mono_now_ns() + 500'000'000;
}

// A test's message shows the Python stack alone when there is one: in a
// Python host the native frames are the interpreter's (the JSON keeps them).
std::string stacks_text(const Stacks& stacks) {
  Stacks shown = stacks;
  if (shown.script && !shown.script->empty()) shown.native.clear();
  return format_stacks(shown, "    ");
}

bool suppressed(const Stacks& stacks) {
  const Suppressions* s = configured_suppressions(options());
  return s && s->match(stacks);
}

nlohmann::json context_document(std::uint32_t context, double hold_threshold) {
  using nlohmann::json;
  std::vector<ConnRecord> conns;
  Registry::instance().scan(scan_deadline(), [&](const ConnRecord& r) {
    if (left_open(r, context)) conns.push_back(r);
  });
  std::sort(conns.begin(), conns.end(), [](auto& a, auto& b) { return a.id < b.id; });
  CheckoutTable::ContextCheckouts co = CheckoutTable::instance().of_context(context);

  Symbolizer symbolizer;
  Report r;
  r.trigger = "request";
  for (const PoolRecord& p : CheckoutTable::instance().snapshot(scan_deadline()).pools)
    r.pools.push_back(pool_view(p));
  const std::int64_t now_mono = mono_now_ns();
  json out;
  ContextLabel label = context_label(context);
  out["context"] = {{"test", label.test}};
  if (*label.fixture) out["context"]["fixture"] = label.fixture;
  if (*label.scope) out["context"]["scope"] = label.scope;

  json conn_list = json::array();
  for (const ConnRecord& rec : conns) {
    Connection c = open_connection_view(rec, false, now_mono, symbolizer, &probe_state);
    if (suppressed(c.acquired)) continue;
    Report one;
    one.connections.push_back(c);
    json cj = to_json(one)["connections"][0];
    cj["text"] = describe_connection(c) + "\n" + stacks_text(c.acquired);
    conn_list.push_back(std::move(cj));
  }
  out["connections"] = std::move(conn_list);

  auto checkout_json = [&](const CheckoutRecord& rec, const char* status, double seconds) {
    Checkout c = checkout_view(rec, symbolizer);
    c.status = status;
    c.held_seconds = seconds;
    Report one = r;
    one.checkouts = {c};
    json cj = to_json(one)["checkouts"][0];
    cj["text"] = describe_checkout(r, c) + "\n" + stacks_text(c.acquired);
    return std::make_pair(suppressed(c.acquired), cj);
  };
  json co_list = json::array();
  for (const CheckoutRecord& rec : co.open) {
    auto [skip, cj] =
        checkout_json(rec, "open", static_cast<double>(now_mono - rec.checked_out.mono_ns) / 1e9);
    if (!skip) co_list.push_back(std::move(cj));
  }
  for (const CheckoutRecord& rec : co.reclaimed) {
    auto [skip, cj] = checkout_json(rec, "reclaimed", held(rec));
    if (!skip) co_list.push_back(std::move(cj));
  }
  out["checkouts"] = std::move(co_list);
  out["held_longest"] = nullptr;
  if (hold_threshold > 0 && co.longest.end != CheckoutEnd::kOpen &&
      held(co.longest) > hold_threshold) {
    auto [skip, cj] = checkout_json(
        co.longest, co.longest.end == CheckoutEnd::kReclaimed ? "reclaimed" : "returned",
        held(co.longest));
    if (!skip) out["held_longest"] = std::move(cj);
  }
  return out;
}

}  // namespace

}  // namespace connleak::shim

using namespace connleak;
using namespace connleak::shim;

CONNLEAK_EXPORT unsigned long long connleak_context_intern(const char* test, const char* fixture,
                                                           const char* scope) {
  if (!should_track()) return 0;
  Reentry guard;
  // A parametrized node id can carry anything the suite passed in ("test[postgresql://u:pw@h]").
  std::string safe_test = test ? scrub_value(test) : "";
  return ContextTable::instance().intern(safe_test, fixture ? fixture : "", scope ? scope : "");
}

CONNLEAK_EXPORT unsigned long long connleak_context_set(unsigned long long context) {
  if (!options().enabled) return 0;
  if (!valid_context(context)) context = 0;
  return set_current_context(static_cast<std::uint32_t>(context));
}

CONNLEAK_EXPORT long connleak_context_leaks(unsigned long long context, double hold_threshold) {
  if (!options().enabled || in_vfork_child()) return -1;
  if (!valid_context(context)) return 0;
  const auto id = static_cast<std::uint32_t>(context);
  long count = 0;
  Registry::instance().scan(scan_deadline(),
                            [&](const ConnRecord& r) { count += left_open(r, id); });
  CheckoutTable::ContextCheckouts co = CheckoutTable::instance().of_context(id);
  count += static_cast<long>(co.open.size() + co.reclaimed.size());
  if (hold_threshold > 0 && co.longest.end != CheckoutEnd::kOpen &&
      held(co.longest) > hold_threshold)
    ++count;
  return count;
}

CONNLEAK_EXPORT long connleak_context_report(unsigned long long context, double hold_threshold,
                                             char* buffer, unsigned long size) {
  if (!options().enabled || in_vfork_child() || !valid_context(context)) return -1;
  Reentry guard;  // symbolizing may open files: not the program's I/O
  std::string text;
  try {
    text = context_document(static_cast<std::uint32_t>(context), hold_threshold)
               .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  } catch (const std::exception&) {
    return -1;
  }
  if (buffer && size > 0) {
    std::size_t n = std::min<std::size_t>(text.size(), size - 1);
    std::memcpy(buffer, text.data(), n);
    buffer[n] = '\0';
  }
  return static_cast<long>(text.size());
}
