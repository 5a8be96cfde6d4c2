// Pool checkout + return through the public API (connleak_checkout /
// connleak_checkin), as python/connleak's adapters call it, with a real
// (stub) PGconn as the key: the checkout captures and interns its stacks and
// links the connection record. Plain runs (no shim) have no API: the loop body
// is then empty and the subtraction leaves the API's whole cost.
#include <benchmark/benchmark.h>
#include <connleak/connleak.h>
#include <libpq-fe.h>

#include "alloc_count.h"

namespace {

constexpr int kDepth = 32;

template <typename Fn>
__attribute__((noinline)) void at_depth(int depth, Fn& fn) {
  if (depth > 0)
    at_depth(depth - 1, fn);
  else
    fn();
  benchmark::ClobberMemory();
}

void BM_pool_checkout_checkin(benchmark::State& state) {
  PGconn* conn = PQconnectdb("host=127.0.0.1 port=5432 dbname=bench user=bench");
  unsigned long long pool =
      connleak_pool_register
          ? connleak_pool_register("bench.Pool", "bench#1", "postgresql://bench@127.0.0.1/bench", 4)
          : 0;
  if (connleak_pool_adopt)
    connleak_pool_adopt(pool, CONNLEAK_KEY_HANDLE, reinterpret_cast<unsigned long long>(conn));
  auto pair = [&] {
    if (!connleak_checkout) return;
    unsigned long long id = connleak_checkout(pool, CONNLEAK_KEY_HANDLE,
                                              reinterpret_cast<unsigned long long>(conn), nullptr);
    connleak_checkin(id, CONNLEAK_RETURNED);
  };
  unsigned long before = bench_alloc_count();
  for (auto _ : state) at_depth(kDepth, pair);
  state.counters["allocs"] = benchmark::Counter(static_cast<double>(bench_alloc_count() - before),
                                                benchmark::Counter::kAvgIterations);
  PQfinish(conn);
}
BENCHMARK(BM_pool_checkout_checkin);

}  // namespace
