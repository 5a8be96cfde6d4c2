// What loading the shim costs a host that has not connected yet: no shared
// object but the shim itself (libstdc++.so.6, libm, libgcc_s, Boost, libunwind
// would add start-up time to every preloaded process), and no thread while no
// option needs one (a thread turns off glibc's single-threaded fast paths on
// every I/O call).
#include <gtest/gtest.h>

#include <set>
#include <sstream>
#include <string>

#include "tests/e2e/harness.h"

namespace e2e {
namespace {

// The shared objects on lines "<tag> <path>" of startup_probe's output.
std::set<std::string> objects(const std::string& out, const std::string& tag) {
  std::set<std::string> paths;
  std::istringstream lines(out);
  std::string line;
  while (std::getline(lines, line))
    if (line.rfind(tag + " ", 0) == 0) paths.insert(line.substr(tag.size() + 1));
  return paths;
}

std::set<std::string> minus(const std::set<std::string>& a, const std::set<std::string>& b) {
  std::set<std::string> out;
  for (const std::string& s : a)
    if (!b.count(s)) out.insert(s);
  return out;
}

bool any_named(const std::set<std::string>& paths, const std::string& part) {
  for (const std::string& p : paths)
    if (p.find(part) != std::string::npos) return true;
  return false;
}

std::string joined(const std::set<std::string>& paths) {
  std::string out;
  for (const std::string& p : paths) out += p + "\n";
  return out;
}

int value_of(const std::string& out, const std::string& key) {
  std::size_t at = out.find(key + " ");
  return at == std::string::npos ? -1 : std::stoi(out.substr(at + key.size() + 1));
}

std::string base_name(const std::string& path) {
  return path.substr(path.rfind('/') + 1);
}

// Issue 19's target: before its first connection a host carries the shim and
// nothing else (libstdc++ and libgcc are linked into it statically; Boost is
// header-only; libunwind is opened at the first capture). glibc's libdl and
// libpthread are allowed: empty stubs since glibc 2.34, but a build against an
// older glibc would need them.
TEST(Startup, ShimMapsNothingButItselfBeforeTheFirstConnection) {
  Result plain = run({bin("startup_probe")}, {.preload = false});
  ASSERT_EQ(plain.exit_code, 0) << describe(plain);
  Result shim = run({bin("startup_probe")});
  ASSERT_EQ(shim.exit_code, 0) << describe(shim);
  EXPECT_EQ(summary(shim, "opened"), 1u);

  std::set<std::string> added = minus(objects(shim.out, "before"), objects(plain.out, "before"));
  std::set<std::string> names;
  for (const std::string& p : added) names.insert(base_name(p));
  names.erase("libdl.so.2");
  names.erase("libpthread.so.0");
  EXPECT_EQ(names, std::set<std::string>{"libconnleak.so"}) << joined(added);

  // Canary: the same reading sees what the shim loads later on purpose: the
  // first connection's stack capture opens libunwind (RTLD_LOCAL).
  std::set<std::string> later = minus(objects(shim.out, "after"), objects(shim.out, "before"));
  EXPECT_TRUE(any_named(later, "libunwind.so")) << joined(later);
  EXPECT_FALSE(
      any_named(minus(objects(plain.out, "after"), objects(plain.out, "before")), "libunwind.so"));
}

TEST(Startup, PlainPreloadStartsNoThreadAndKeepsGlibcSingleThreaded) {
  Result r = run({bin("startup_probe")});
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  EXPECT_EQ(summary(r, "opened"), 1u);
  EXPECT_EQ(value_of(r.out, "threads"), 1) << r.out;
  EXPECT_EQ(value_of(r.out, "single_threaded"), 1) << r.out;

  // Canary: an option that needs the worker thread starts it at the first
  // connection, and the same probe sees it.
  Result with_threshold = run({bin("startup_probe")}, {.options = "threshold=1h"});
  ASSERT_EQ(with_threshold.exit_code, 0) << describe(with_threshold);
  EXPECT_EQ(value_of(with_threshold.out, "threads"), 2) << with_threshold.out;
  EXPECT_EQ(value_of(with_threshold.out, "single_threaded"), 0) << with_threshold.out;
}

}  // namespace
}  // namespace e2e
