// The per-statement activity recording (issue 15) alone, in-process against
// the collector library (no preload, no client library): what every hooked
// query pays when option `statements` is on. The hot path stores a bounded raw
// copy under a seqlock; normalization happens only when a report reads it
// (BM_activity_report_read measures that side, for scale).
#include <benchmark/benchmark.h>

#include <string>

#include "alloc_count.h"
#include "collector/activity/activity.h"

namespace {

using connleak::activity::Activity;
using connleak::activity::ActivityView;
using connleak::activity::Dialect;

void set_allocs(benchmark::State& state, unsigned long before) {
  state.counters["allocs"] = benchmark::Counter(static_cast<double>(bench_alloc_count() - before),
                                                benchmark::Counter::kAvgIterations);
}

// One query as a hook records it: the text when sent, the result when read.
void record(benchmark::State& state, const char* sql) {
  static Activity a;
  unsigned long before = bench_alloc_count();
  for (auto _ : state) {
    connleak::activity::note_statement(a, sql, static_cast<std::size_t>(-1), Dialect::kPostgres);
    connleak::activity::note_result(a, false);
    benchmark::ClobberMemory();
  }
  set_allocs(state, before);
}

// The common short statement (33 bytes).
void BM_activity_short_statement(benchmark::State& state) {
  record(state, "SELECT * FROM users WHERE id = 42");
}
BENCHMARK(BM_activity_short_statement);

// A statement longer than the kept copy (only kRawBytes are copied).
void BM_activity_long_statement(benchmark::State& state) {
  static const std::string sql = "SELECT " + std::string(1000, 'x') + " FROM t";
  record(state, sql.c_str());
}
BENCHMARK(BM_activity_long_statement);

// An execution of a prepared statement: its text was normalized at prepare.
void BM_activity_prepared_execution(benchmark::State& state) {
  static Activity a;
  unsigned long before = bench_alloc_count();
  for (auto _ : state) {
    connleak::activity::note_prepared(a, "SELECT * FROM users WHERE id = $1");
    connleak::activity::note_result(a, false);
    benchmark::ClobberMemory();
  }
  set_allocs(state, before);
}
BENCHMARK(BM_activity_prepared_execution);

// The report side: copy under the seqlock, then normalize (off the hot path).
void BM_activity_report_read(benchmark::State& state) {
  static Activity a;
  connleak::activity::note_statement(a, "SELECT * FROM users WHERE name = 'x' AND id = 42",
                                     static_cast<std::size_t>(-1), Dialect::kPostgres);
  for (auto _ : state) {
    ActivityView view;
    benchmark::DoNotOptimize(connleak::activity::read_activity(a, view));
    benchmark::DoNotOptimize(view.last_statement.data());
  }
}
BENCHMARK(BM_activity_report_read);

}  // namespace

BENCHMARK_MAIN();
