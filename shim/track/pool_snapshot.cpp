#include "shim/track/pool_snapshot.h"

#include <atomic>
#include <map>
#include <tuple>

#include "collector/policy/suppressions.h"
#include "collector/report/format/report_text.h"
#include "collector/report/report_builder.h"
#include "collector/report/report_checkouts.h"
#include "collector/report/report_writer.h"
#include "collector/util/logger.h"
#include "shim/python/python_stack.h"
#include "shim/python/python_task.h"
#include "shim/runtime/guard.h"
#include "shim/runtime/runtime.h"

namespace connleak::shim {

namespace {

int depth() {
  return static_cast<int>(options().stack_depth);
}

// A report holding just the pools (for labels) and the given checkouts.
Report checkouts_report(const std::vector<Checkout>& checkouts) {
  Report r;
  CheckoutSnapshot snap = CheckoutTable::instance().snapshot(mono_now_ns() + 50'000'000);
  for (const PoolRecord& p : snap.pools) r.pools.push_back(pool_view(p));
  r.checkouts = checkouts;
  return r;
}

// Is the lent connection inside a transaction now? -1 unknown.
std::int8_t in_transaction(const CheckoutRecord& c) {
  if (!c.connection_key) return -1;
  std::int8_t result = -1;
  Registry::instance().update(c.connection_key, [&](ConnRecord& r) {
    if (r.id != c.connection || !r.live) return;
    if (r.library() != Library::kLibpq && !r.live->txn_known.load(std::memory_order_relaxed))
      return;
    auto state = static_cast<TxnState>(r.live->txn.load(std::memory_order_acquire));
    result = state == TxnState::kInTransaction || state == TxnState::kInError ? 1 : 0;
  });
  return result;
}

}  // namespace

StackId checkout_holder_stack(const CheckoutRecord& c) {
  // An asyncio holder shares its thread with every other task: that thread's
  // stack is the holder's only while the holder is the task being stepped;
  // otherwise the holder is suspended and its stack is its coroutine chain.
  if (c.task) {
    bool running = false;
    if (StackId suspended = capture_holder_task_stack(c.id, depth(), &running)) return suspended;
    if (!running) return 0;
  }
  return capture_thread_python_stack(c.py_thread, depth());
}

void report_checkout_end(const CheckoutRecord& ended) {
  Symbolizer symbolizer;
  Checkout view = checkout_view(ended, symbolizer);
  view.held_seconds = static_cast<double>(ended.returned.mono_ns - ended.checked_out.mono_ns) / 1e9;
  Report r = checkouts_report({});
  if (ended.end == CheckoutEnd::kReclaimed) {
    view.status = "reclaimed";
    if (const Suppressions* s = configured_suppressions(options()); s && s->match(view.acquired))
      return;
    log_block("connleak: WARNING: " + describe_checkout(r, view) +
              " was never returned: the garbage collector reclaimed it while checked out; checked "
              "out from:\n" +
              format_stacks(view.acquired, "    "));
    return;
  }
  char held[32];
  std::snprintf(held, sizeof held, "%.1f", view.held_seconds);
  log().warn("connleak: checkout {} of {} (flagged checkout_held) returned after {} s", ended.id,
             pool_label(r, ended.pool), held);
}

void checkout_watchdog_round() {
  const double threshold = options().checkout_threshold.seconds;
  if (threshold <= 0) return;
  const std::int64_t now_mono = mono_now_ns();
  const auto threshold_ns = static_cast<std::int64_t>(threshold * 1e9);
  std::vector<CheckoutRecord> crossed;
  CheckoutTable::instance().scan_open(now_mono + 50'000'000, [&](CheckoutRecord& c) {
    if (c.alerted || now_mono - c.checked_out.mono_ns < threshold_ns) return;
    c.alerted = true;  // once per checkout
    c.alert_after = static_cast<double>(now_mono - c.checked_out.mono_ns) / 1e9;
    crossed.push_back(c);
  });
  if (crossed.empty()) return;
  // Outside the table's lock: the transaction state takes a registry lock and
  // the holder's stack the GIL.
  for (CheckoutRecord& c : crossed) {
    c.in_transaction_at_alert = in_transaction(c);
    c.holder_py_stack = checkout_holder_stack(c);
    CheckoutTable::instance().update_open(c.id, [&](CheckoutRecord& live) {
      live.in_transaction_at_alert = c.in_transaction_at_alert;
      live.holder_py_stack = c.holder_py_stack;
    });
  }
  // Grouped by pool and checkout stack (native and Python); each checkout's
  // own holder stack is shown inside its group.
  std::map<std::tuple<std::uint64_t, StackId, StackId>, std::vector<const CheckoutRecord*>> groups;
  for (const CheckoutRecord& c : crossed) groups[{c.pool, c.stack, c.py_stack}].push_back(&c);
  Symbolizer symbolizer;
  const Suppressions* suppressions = configured_suppressions(options());
  Report labels = checkouts_report({});
  std::size_t blocks = 0, hidden = 0;
  for (const auto& [key, members] : groups) {
    std::vector<Checkout> views;
    for (std::size_t i = 0; i < members.size() && i < 5; ++i) {
      Checkout v = checkout_view(*members[i], symbolizer);
      v.status = "open";
      v.held_seconds = members[i]->alert_after;
      views.push_back(std::move(v));
    }
    if (suppressions && suppressions->match(views.front().acquired)) continue;
    if (blocks >= 10) {
      hidden += members.size();
      continue;
    }
    ++blocks;
    log_block(render_checkout_alert(labels, views, threshold, members.size()));
  }
  if (hidden)
    log().warn(
        "connleak: WARNING: {} more checkout(s) crossed checkout_threshold this round; see the "
        "exit report",
        hidden);
}

int write_pool_snapshot(std::uint64_t pool_id, double waited_seconds) {
  const auto interval = static_cast<std::int64_t>(options().snapshot_interval.seconds * 1e9);
  if (!CheckoutTable::instance().take_snapshot_slot(pool_id, mono_now_ns(), interval)) return 1;
  ReportExtras extras;
  extras.pool = pool_id;
  if (waited_seconds >= 0) extras.waited_seconds = waited_seconds;
  extras.holder_stack = &checkout_holder_stack;
  return write_dump("pool_exhausted", &extras) ? 0 : 1;
}

bool write_refusal_snapshot(const std::string& what) {
  static std::atomic<std::int64_t> last{0};
  const auto interval = static_cast<std::int64_t>(options().snapshot_interval.seconds * 1e9);
  std::int64_t now_mono = mono_now_ns(), prev = last.load();
  if (prev != 0 && now_mono - prev < interval) return false;
  if (!last.compare_exchange_strong(prev, now_mono)) return false;
  ReportExtras extras;
  extras.refusal = what;
  extras.holder_stack = &checkout_holder_stack;
  return write_dump("server_refused", &extras);
}

}  // namespace connleak::shim
