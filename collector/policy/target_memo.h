#pragma once
// A connection's target, formatted, redacted and interned once per distinct set
// of inputs instead of on every connect: a pool's connections all share theirs,
// and format_target_without (scrub, quote, compare with the password) is
// ~3,500 instructions a connect, a quarter of a connect + close pair.
#include <initializer_list>
#include <string_view>
#include <utility>

namespace connleak {

// intern_string(format_target_without(secret, parts)), byte for byte. This
// thread's last few results are remembered under a 128-bit hash of every input
// (the keys, the values and the password), keyed by a per-process random
// seed: the memo holds neither the password nor the raw values (which may
// carry one, e.g. a dbname that is itself a URI), only that hash and the
// interned, already-redacted target. Inputs over 1 KiB are not remembered.
const char* interned_target_without(
    std::string_view secret,
    std::initializer_list<std::pair<std::string_view, std::string_view>> parts);

}  // namespace connleak
