// libFuzzer target for the SQL normalizer. Standalone until tests/fuzz gets
// its CMake option; by hand:
//   clang++ -std=c++20 -g -O1 -fsanitize=fuzzer,address,undefined -I. \
//     tests/fuzz/fuzz_normalize.cpp collector/activity/normalize.cpp -o fuzz_normalize
//   ./fuzz_normalize -max_total_time=60
// Checks, beyond "no crash": the output is valid UTF-8 within the length cap,
// and a marker placed inside a single-quoted literal never comes out.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "collector/activity/normalize.h"

namespace {

using connleak::activity::Dialect;

bool valid_utf8(const std::string& s) {
  for (std::size_t i = 0; i < s.size();) {
    auto c = static_cast<unsigned char>(s[i]);
    int len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (len == 0 || i + len > s.size()) return false;
    for (int k = 1; k < len; ++k)
      if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) return false;
    i += len;
  }
  return true;
}

std::size_t code_points(const std::string& s) {
  std::size_t n = 0;
  for (char c : s) n += (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  return n;
}

void check(std::string_view sql, Dialect d, bool cut) {
  std::string out = connleak::activity::normalize_sql(sql, d, cut);
  if (!valid_utf8(out) || code_points(out) > connleak::activity::kMaxNormalizedChars) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view sql(reinterpret_cast<const char*>(data), size);
  for (Dialect d : {Dialect::kPostgres, Dialect::kMysql}) {
    check(sql, d, false);
    check(sql, d, true);
  }
  // A literal that starts where code is expected (after "SELECT ") and holds
  // no quote or backslash must vanish whatever follows it (unless the input
  // spells the marker itself, as a name).
  if (sql.find("QQSECRETQQ") != std::string_view::npos) return 0;
  std::string marked = "SELECT 'QQSECRETQQ', ";
  marked.append(sql);
  for (Dialect d : {Dialect::kPostgres, Dialect::kMysql}) {
    for (bool cut : {false, true}) {
      std::string out = connleak::activity::normalize_sql(marked, d, cut);
      if (out.find("QQSECRETQQ") != std::string::npos) std::abort();
    }
  }
  return 0;
}
