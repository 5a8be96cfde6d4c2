// dump_signal: only signals a dump can safely ride on. A fault signal would
// re-run the faulting instruction after each dump (a host spinning forever),
// a terminating one would be swallowed, and SIGKILL/SIGSTOP/32/33 cannot be
// caught at all; each of those is one warning and the previous value stays.
#include <gtest/gtest.h>
#include <signal.h>

#include <string>
#include <vector>

#include "collector/policy/options.h"

namespace connleak {
namespace {

TEST(OptionsDumpSignal, OffByDefaultAndControlSocketToo) {
  // No thread unless asked for: Python 3.12+ warns at fork() once one exists.
  Options o;
  EXPECT_EQ(o.dump_signal, 0);
  EXPECT_FALSE(o.control);
}

TEST(OptionsDumpSignal, AcceptsUserAndRealTimeSignals) {
  for (int sig : {0, SIGUSR1, SIGUSR2, SIGRTMIN, SIGRTMIN + 6, SIGRTMAX}) {
    std::vector<std::string> warnings;
    Options o = parse_options("dump_signal=" + std::to_string(sig), &warnings);
    EXPECT_EQ(o.dump_signal, sig);
    EXPECT_TRUE(warnings.empty()) << sig << ": " << testing::PrintToString(warnings);
  }
}

TEST(OptionsDumpSignal, RefusesEverythingElseWithOneWarning) {
  for (int sig : {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTERM, SIGINT, SIGPIPE, SIGKILL, SIGSTOP,
                  SIGHUP, SIGCHLD, SIGALRM, 32, 33}) {
    std::vector<std::string> warnings;
    Options o = parse_options("dump_signal=12:dump_signal=" + std::to_string(sig), &warnings);
    EXPECT_EQ(o.dump_signal, 12) << sig;  // the earlier valid value stays
    ASSERT_EQ(warnings.size(), 1u) << sig;
    EXPECT_EQ(warnings[0], "connleak: ignoring option 'dump_signal=" + std::to_string(sig) +
                               "': dumps can only be asked with SIGUSR1 (10), SIGUSR2 (12) or a "
                               "real-time signal (" +
                               std::to_string(SIGRTMIN) + ".." + std::to_string(SIGRTMAX) +
                               "); keeping 12");
  }
}

TEST(OptionsDumpSignal, GarbageIsOneWarningAndKeepsTheDefault) {
  for (const char* text : {"dump_signal=USR2", "dump_signal=-12", "dump_signal=65",
                           "dump_signal=1e3", "dump_signal=\x1b[2J"}) {
    std::vector<std::string> warnings;
    Options o = parse_options(text, &warnings);
    EXPECT_EQ(o.dump_signal, 0) << text;
    ASSERT_EQ(warnings.size(), 1u) << text;
    EXPECT_EQ(warnings[0].find('\x1b'), std::string::npos) << warnings[0];
  }
}

}  // namespace
}  // namespace connleak
