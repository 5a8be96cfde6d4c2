// CONNLEAK_OPTIONS parser: any text, and every warning stays one short,
// printable line (it goes to the host's stderr), the help text carries no
// control character from a value, and every accepted duration survives the
// round trip through its own spelling.
#include <cmath>
#include <string>
#include <vector>

#include "collector/policy/options.h"
#include "tests/fuzz/fuzz_input.h"

using namespace connleak;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);

  std::vector<std::string> warnings;
  const Options options = parse_options(text, &warnings);
  for (const std::string& w : warnings) {
    FUZZ_CHECK(!fuzz::has_control(w), w);
    // 120 bytes of echoed input, "..." and the fixed wording.
    FUZZ_CHECK(w.size() <= 400, w);
    FUZZ_CHECK(w.rfind("connleak: ", 0) == 0, w);
  }
  // Without a warnings vector nothing else changes (the shim passes one, tests may not).
  const Options quiet = parse_options(text, nullptr);
  FUZZ_CHECK(options_help(quiet) == options_help(options), text);

  const std::string help = options_help(options);
  FUZZ_CHECK(!help.empty(), text);
  FUZZ_CHECK(!fuzz::has_control(help, "\n"), help);

  Duration d;
  if (parse_duration(text, &d)) {
    FUZZ_CHECK(std::isfinite(d.seconds) && d.seconds >= 0 && d.seconds <= 1e9, text);
    const std::string spelled = format_duration(d);
    Duration back{-1};
    FUZZ_CHECK(parse_duration(spelled, &back), spelled);
    FUZZ_CHECK(std::fabs(back.seconds - d.seconds) <= 2e-9 + 1e-12 * d.seconds, spelled);
  }
  std::int64_t v = 0;
  if (parse_int(text, -5, 1000, &v)) FUZZ_CHECK(v >= -5 && v <= 1000, text);
  bool b = false;
  parse_bool(text, &b);
  return 0;
}
