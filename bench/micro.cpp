// Micro-benchmarks of the hooks against the stub client libraries
// (bench/stub): the same binary runs once plain and once with
// LD_PRELOAD=libconnleak.so, and scripts/bench_run.py subtracts the two.
// Every benchmark also reports `allocs`: malloc/calloc/realloc calls per
// iteration on the calling thread (alloc_count.c), the shim's included.
#include <benchmark/benchmark.h>
#include <libpq-fe.h>
#include <mysql.h>

#include <cstdlib>

#include "alloc_count.h"

namespace {

// Connects are made from this deep in the stack, so the shim walks and keeps
// a full stack at its default depth (32 frames) as in a real service.
constexpr int kDepth = 32;

template <typename Fn>
__attribute__((noinline)) void at_depth(int depth, Fn& fn) {
  if (depth > 0)
    at_depth(depth - 1, fn);
  else
    fn();
  benchmark::ClobberMemory();  // no tail call: every level stays a real frame
}

// CONNLEAK_BENCH_ITERATIONS=N: exactly N iterations, one run, so callgrind's
// count of two runs gives the marginal instructions per pair.
void fixed_iterations(benchmark::internal::Benchmark* b) {
  if (const char* n = std::getenv("CONNLEAK_BENCH_ITERATIONS"))
    b->Iterations(std::strtoll(n, nullptr, 10));
}

void set_allocs(benchmark::State& state, unsigned long before) {
  state.counters["allocs"] = benchmark::Counter(static_cast<double>(bench_alloc_count() - before),
                                                benchmark::Counter::kAvgIterations);
}

const char* const kConninfo = "host=127.0.0.1 port=5432 dbname=bench user=bench";

// PQconnectdb + PQfinish: the shim captures and interns the stack, reads the
// target back (PQhost/PQport/PQdb/PQuser), records, and releases.
void BM_pq_connect_close(benchmark::State& state) {
  auto pair = [] {
    PGconn* conn = PQconnectdb(kConninfo);
    benchmark::DoNotOptimize(conn);
    PQfinish(conn);
  };
  unsigned long before = bench_alloc_count();
  for (auto _ : state) at_depth(kDepth, pair);
  set_allocs(state, before);
}
BENCHMARK(BM_pq_connect_close)->Apply(fixed_iterations);

// PQexec on an idle connection that stays idle: the transaction-tracking path
// with no state change (the common case for every query).
void BM_pq_exec_idle(benchmark::State& state) {
  PGconn* conn = PQconnectdb(kConninfo);
  unsigned long before = bench_alloc_count();
  for (auto _ : state) {
    PGresult* res = PQexec(conn, "SELECT 1");
    benchmark::DoNotOptimize(res);
    PQclear(res);
  }
  set_allocs(state, before);
  PQfinish(conn);
}
BENCHMARK(BM_pq_exec_idle);

// The asynchronous API as pgbench and psycopg drive it: PQsendQuery, then
// PQgetResult until NULL; three hooked calls per query.
void BM_pq_send_get_idle(benchmark::State& state) {
  PGconn* conn = PQconnectdb(kConninfo);
  unsigned long before = bench_alloc_count();
  for (auto _ : state) {
    PQsendQuery(conn, "SELECT 1");
    while (PGresult* res = PQgetResult(conn)) PQclear(res);
  }
  set_allocs(state, before);
  PQfinish(conn);
}
BENCHMARK(BM_pq_send_get_idle);

// BEGIN; SELECT; COMMIT: two state changes per iteration, and a stack
// captured where each transaction begins (from kDepth frames down).
void BM_pq_txn_begin_commit(benchmark::State& state) {
  PGconn* conn = PQconnectdb(kConninfo);
  auto txn = [conn] {
    PQclear(PQexec(conn, "BEGIN"));
    PQclear(PQexec(conn, "SELECT 1"));
    PQclear(PQexec(conn, "COMMIT"));
  };
  unsigned long before = bench_alloc_count();
  for (auto _ : state) at_depth(kDepth, txn);
  set_allocs(state, before);
  PQfinish(conn);
}
BENCHMARK(BM_pq_txn_begin_commit);

// mysql_init(NULL) + mysql_real_connect + mysql_close against the stub.
void BM_mysql_connect_close(benchmark::State& state) {
  auto pair = [] {
    MYSQL* m = mysql_init(nullptr);
    benchmark::DoNotOptimize(
        mysql_real_connect(m, "127.0.0.1", "bench", nullptr, "bench", 3306, nullptr, 0));
    mysql_close(m);
  };
  unsigned long before = bench_alloc_count();
  for (auto _ : state) at_depth(kDepth, pair);
  set_allocs(state, before);
}
BENCHMARK(BM_mysql_connect_close)->Apply(fixed_iterations);

}  // namespace

BENCHMARK_MAIN();
