// A C++ host using libpqxx. It throws and catches C++ exceptions while the
// shim is loaded (connleak must not route them through libunwind), and leaks
// one connection allocated with new.
#include <dlfcn.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <pqxx/pqxx>
#include <stdexcept>

__attribute__((noinline)) static pqxx::connection* leak_pqxx_connection(const char* info) {
  return new pqxx::connection(info);
}

__attribute__((noinline)) static void throw_through_frames(int depth) {
  if (depth == 0) throw std::runtime_error("deep");
  throw_through_frames(depth - 1);
}

int main() {
  const char* info = std::getenv("CONNLEAK_TEST_PG_CONNINFO");
  if (!info) return 2;

  // libstdc++ must still unwind through libgcc_s, not a libunwind we dragged in.
  Dl_info where{};
  void* raise = dlsym(RTLD_DEFAULT, "_Unwind_RaiseException");
  if (!raise || !dladdr(raise, &where) || !std::strstr(where.dli_fname, "libgcc_s")) {
    std::fprintf(stderr, "_Unwind_RaiseException resolves to %s\n",
                 raise ? where.dli_fname : "nothing");
    return 10;
  }

  int caught = 0;
  for (int i = 0; i < 100; ++i) {
    try {
      throw_through_frames(20);
    } catch (const std::runtime_error&) {
      ++caught;
    }
  }
  try {
    pqxx::connection bad("host=127.0.0.1 port=1 dbname=x user=x connect_timeout=2");
  } catch (const pqxx::broken_connection&) {
    ++caught;
  }
  if (caught != 101) return 11;

  {
    pqxx::connection ok(info);
    pqxx::work w(ok);
    if (w.exec1("select 1")[0].as<int>() != 1) return 12;
    w.commit();
  }
  leak_pqxx_connection(info);
  std::printf("caught %d\n", caught);
  return 0;
}
