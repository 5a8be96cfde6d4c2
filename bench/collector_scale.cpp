// The collector's own costs at scale, measured in-process (no shim, no
// preload): heap bytes per tracked connection, bytes per interned stack, and
// the watchdog round (watchdog_scan, what the collector thread runs every
// tick) over N open connections, and the exit report of L leaks from S sites
// broken down into its phases (snapshot, build with symbolization, JSON,
// text). Prints one JSON object.
//
//   collector_scale [connections=100000] [stacks=100] [scans=30] [leaks=10000] [out_dir]
//
// With out_dir, the exit report's JSON and text are written there as
// report.json and report.txt (to compare the writers' output across changes).
#include <execinfo.h>
#include <malloc.h>
#include <time.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

#include "collector/activity/activity.h"
#include "collector/core/live_state.h"
#include "collector/core/registry.h"
#include "collector/core/stack_depot.h"
#include "collector/core/string_table.h"
#include "collector/policy/watchdog.h"
#include "collector/report/format/report_json.h"
#include "collector/report/format/report_text.h"
#include "collector/report/report_builder.h"

using namespace connleak;

namespace {

std::size_t heap_bytes() {
  struct mallinfo2 mi = mallinfo2();
  return mi.uordblks + mi.hblkhd;  // in-use arena bytes + mmapped chunks
}

// A plausible 32-frame stack, distinct per `seed`.
void fake_stack(std::uintptr_t seed, std::uintptr_t* frames, std::size_t count) {
  for (std::size_t i = 0; i < count; ++i) frames[i] = 0x555555554000u + seed * 0x1000u + i * 0x40u;
}

// Real stacks for the report phase: S distinct functions, each capturing its
// own stack ~20 frames deep, so symbolization has real code to resolve.
using Frames = std::vector<std::uintptr_t>;

__attribute__((noinline)) Frames deep_capture(int depth) {
  Frames out;
  if (depth > 0) {
    out = deep_capture(depth - 1);
  } else {
    void* raw[64];
    int n = backtrace(raw, 64);
    for (int i = 1; i < n && out.size() < 32; ++i)
      out.push_back(reinterpret_cast<std::uintptr_t>(raw[i]));
  }
  __asm__ volatile("" ::: "memory");
  return out;
}

template <int N>
__attribute__((noinline)) Frames site() {
  // A body of its own: identical instances would be folded into one function
  // (GCC's -fipa-icf), and the 100 sites would read as one in the text report.
  __asm__ volatile("" ::"r"(N));
  Frames f = deep_capture(20);
  __asm__ volatile("" ::: "memory");
  return f;
}

template <int... N>
std::vector<Frames> all_sites(std::integer_sequence<int, N...>) {
  return {site<N>()...};
}

std::int64_t thread_cpu_ns() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

double ms_since(std::int64_t t0) {
  return static_cast<double>(mono_now_ns() - t0) / 1e6;
}

}  // namespace

int main(int argc, char** argv) {
  const std::size_t n = argc > 1 ? std::strtoul(argv[1], nullptr, 10) : 100000;
  const std::size_t stacks = argc > 2 ? std::strtoul(argv[2], nullptr, 10) : 100;
  const int scans = argc > 3 ? std::atoi(argv[3]) : 30;
  const std::size_t leaks = argc > 4 ? std::strtoul(argv[4], nullptr, 10) : 10000;
  constexpr std::size_t kFrames = 32;

  // Stack depot: fixed cost of the table, then bytes per 32-frame stack.
  std::size_t h0 = heap_bytes();
  auto* depot = new StackDepot;
  std::size_t depot_fixed = heap_bytes() - h0;
  std::uintptr_t frames[kFrames];
  std::size_t h1 = heap_bytes();
  std::vector<StackId> ids;
  for (std::size_t s = 0; s < stacks; ++s) {
    fake_stack(s, frames, kFrames);
    ids.push_back(depot->intern(frames, kFrames));
  }
  std::size_t depot_heap = heap_bytes() - h1;
  std::size_t depot_counted = depot->bytes();

  // Registry: heap bytes per open record (the LiveConn pool included), with
  // the stack and the target already interned, as for connections opened
  // from known sites.
  auto* registry = new Registry;
  const char* target = intern_string("host=127.0.0.1 port=5432 dbname=bench user=bench");
  const char* module = intern_string("/usr/lib/x86_64-linux-gnu/libpq.so.5");
  std::size_t h2 = heap_bytes();
  Timestamp opened = now();
  for (std::size_t i = 0; i < n; ++i) {
    ConnRecord rec;
    rec.handle = 0x7f0000000000u + i * 0x230u;  // malloc'd PGconn-like addresses
    rec.thread = 1;
    rec.opened = opened;
    rec.open_stack = ids[i % ids.size()];
    rec.target = target;
    rec.client_module = module;
    registry->on_open(rec);
  }
  std::size_t registry_heap = heap_bytes() - h2;

  // The same connections once each has sent a statement (option statements,
  // the default): the activity block is made at a connection's first one.
  std::size_t h3 = heap_bytes();
  for (std::size_t i = 0; i < n; ++i) {
    LiveConn* live = registry->live_of(0x7f0000000000u + i * 0x230u);
    activity::Activity* a = live ? live_activity(*live) : nullptr;
    if (a)
      activity::note_statement(*a, "SELECT abalance FROM pgbench_accounts WHERE aid = 4242;",
                               static_cast<std::size_t>(-1), activity::Dialect::kPostgres);
  }
  std::size_t activity_heap = heap_bytes() - h3;

  // One connection in a hundred is in a transaction (none for long), as in a
  // busy service: the transaction check visits those.
  for (std::size_t i = 0; i < n; i += 100)
    if (LiveConn* live = registry->live_of(0x7f0000000000u + i * 0x230u))
      note_txn_state(*live, TxnState::kInTransaction, [] { return StackId{0}; });

  // Watchdog rounds with both thresholds at 1 h, none due, as in a healthy
  // service. scan_ms: every record visited (the worst round: before each,
  // an old record is opened and closed in every shard, so each shard's
  // lifetime floor is due and the shard is walked in full). steady_scan_ms:
  // the rounds in between, which skip the shards whose oldest record is
  // younger than the threshold.
  Thresholds th{3600, 3600};
  std::vector<double> scan_ms, steady_ms;
  auto timed_scan = [&](std::vector<double>& out) {
    std::int64_t t0 = mono_now_ns();
    ScanResult r = watchdog_scan(*registry, th, t0, t0 + 1'000'000'000);
    std::int64_t t1 = mono_now_ns();
    if (!r.alerts.empty() || !r.complete) std::fprintf(stderr, "unexpected alerts\n");
    out.push_back(static_cast<double>(t1 - t0) / 1e6);
  };
  for (int i = 0; i < scans; ++i) {
    for (std::uintptr_t s = 0; s < 64; ++s) {
      ConnRecord old;
      old.handle = 0x10000000u + s * 16;  // one per shard
      old.opened.mono_ns = 1;
      registry->on_open(old);
      registry->on_close(old.handle, 0, opened);
    }
    timed_scan(scan_ms);
    timed_scan(steady_ms);
  }

  // Exit report: `leaks` open records from 100 real sites in a fresh registry.
  delete registry;
  auto* leak_registry = new Registry;
  std::vector<Frames> sites = all_sites(std::make_integer_sequence<int, 100>{});
  std::vector<StackId> site_ids;
  for (const Frames& f : sites)
    site_ids.push_back(StackDepot::instance().intern(f.data(), f.size()));
  for (std::size_t i = 0; i < leaks; ++i) {
    ConnRecord rec;
    rec.handle = 0x7f0000000000u + i * 0x230u;
    rec.thread = 1;
    rec.opened = opened;
    rec.open_stack = site_ids[i % site_ids.size()];
    rec.target = target;
    rec.client_module = module;
    leak_registry->on_open(rec);
  }
  StateProbe probe = [](const ConnRecord&) { return HandleState{"connected", 4242}; };
  // Wall and CPU time per phase: on a busy machine the wall time is mostly
  // waiting for a core; the thread's CPU time is what the phase costs.
  struct Phase {
    std::int64_t wall = mono_now_ns(), cpu = thread_cpu_ns();
    std::pair<double, double> ms() const {
      return {ms_since(wall), static_cast<double>(thread_cpu_ns() - cpu) / 1e6};
    }
  };
  Phase phase;
  Snapshot snap = leak_registry->snapshot(mono_now_ns() + 1'000'000'000);
  auto [snapshot_ms, snapshot_cpu] = phase.ms();
  phase = Phase{};
  Symbolizer symbolizer;
  Report report = build_report(snap, "exit", current_process(), symbolizer, probe);
  auto [build_ms, build_cpu] = phase.ms();
  phase = Phase{};
  std::string json = to_json_text(report);
  auto [json_ms, json_cpu] = phase.ms();
  phase = Phase{};
  std::string text = render_text(report);
  auto [text_ms, text_cpu] = phase.ms();
  if (argc > 5) {
    std::ofstream(std::string(argv[5]) + "/report.json", std::ios::binary) << json;
    std::ofstream(std::string(argv[5]) + "/report.txt", std::ios::binary) << text;
  }

  std::printf(
      "{\"leaks\": %zu, \"report_snapshot_ms\": %.3f, \"report_build_ms\": %.3f, "
      "\"report_json_ms\": %.3f, \"report_text_ms\": %.3f, \"report_json_bytes\": %zu, "
      "\"report_text_bytes\": %zu, \"report_snapshot_cpu_ms\": %.3f, \"report_build_cpu_ms\": "
      "%.3f, "
      "\"report_json_cpu_ms\": %.3f, \"report_text_cpu_ms\": %.3f, ",
      leaks, snapshot_ms, build_ms, json_ms, text_ms, json.size(), text.size(), snapshot_cpu,
      build_cpu, json_cpu, text_cpu);
  std::printf(
      "\"connections\": %zu, \"stacks\": %zu, \"frames\": %zu, \"depot_fixed_bytes\": %zu, "
      "\"depot_heap_bytes\": %zu, \"depot_counted_bytes\": %zu, \"registry_heap_bytes\": %zu, "
      "\"activity_heap_bytes\": %zu, \"record_bytes\": %zu, \"live_bytes\": %zu, "
      "\"activity_bytes\": %zu, \"scan_ms\": [",
      n, stacks, kFrames, depot_fixed, depot_heap, depot_counted, registry_heap, activity_heap,
      sizeof(ConnRecord), sizeof(LiveConn), sizeof(activity::Activity));
  for (std::size_t i = 0; i < scan_ms.size(); ++i) std::printf("%s%.4f", i ? ", " : "", scan_ms[i]);
  std::printf("], \"steady_scan_ms\": [");
  for (std::size_t i = 0; i < steady_ms.size(); ++i)
    std::printf("%s%.4f", i ? ", " : "", steady_ms[i]);
  std::printf("]}\n");
  return 0;
}
