#pragma once
// Ruby's pg for the runtime tests (runtime_test.cpp, ruby_stack_test.cpp):
// whether it can run here, and where the test programs are.
#include <unistd.h>

#include <string>

#include "tests/e2e/harness.h"

namespace e2e {

// Why Ruby's pg cannot run here ("" when it can): a skip states it.
inline std::string ruby_pg_missing() {
  if (access("/usr/bin/ruby", X_OK) != 0) return "/usr/bin/ruby is not installed";
  RunOptions plain;
  plain.preload = false;
  Result probe = run({"/usr/bin/ruby", "-e", "require 'pg'"}, plain);
  if (probe.exit_code != 0) return "Ruby's pg is not installed (Debian ruby-pg): " + probe.err;
  return "";
}

inline std::string ruby_script(const std::string& name) {
  return std::string(CONNLEAK_E2E_SCRIPTS_DIR) + "/ruby/" + name;
}

}  // namespace e2e
