#pragma once
// What every fuzz target shares: a reader that turns the fuzzer's bytes into
// typed values (so one input builds a whole structure), and the checks that
// make a wrong answer a crash libFuzzer records, not a silent pass.
//
// Deliberately not clang's FuzzedDataProvider: the same targets are also built
// with gcc as corpus replayers for the unit and sanitizer builds.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

namespace connleak::fuzz {

// Prints what was expected and aborts: libFuzzer saves the input as a crash.
[[noreturn]] inline void fail(const char* what, std::string_view detail, const char* file,
                              int line) {
  std::fprintf(stderr, "%s:%d: fuzz check failed: %s\n", file, line, what);
  if (!detail.empty()) {
    std::fprintf(stderr, "  detail (%zu bytes): ", detail.size());
    for (unsigned char c : detail.substr(0, 400)) {
      if (c >= 0x20 && c < 0x7f && c != '\\')
        std::fputc(c, stderr);
      else
        std::fprintf(stderr, "\\x%02x", c);
    }
    std::fputc('\n', stderr);
  }
  std::abort();
}

#define FUZZ_CHECK(cond, detail)                                              \
  do {                                                                        \
    if (!(cond)) ::connleak::fuzz::fail(#cond, (detail), __FILE__, __LINE__); \
  } while (0)

// Consumes the input front to back. Running out of bytes is not an error:
// every accessor then returns zeros and empty strings, so any input is valid.
class Input {
 public:
  Input(const std::uint8_t* data, std::size_t size) : p_(data), left_(size) {}

  bool empty() const { return left_ == 0; }
  std::size_t left() const { return left_; }

  std::uint8_t byte() {
    if (left_ == 0) return 0;
    --left_;
    return *p_++;
  }
  bool flag() { return byte() & 1; }
  std::uint64_t u64(int bytes = 8) {
    std::uint64_t v = 0;
    for (int i = 0; i < bytes; ++i) v = (v << 8) | byte();
    return v;
  }
  // In [0, n), n > 0.
  std::size_t below(std::size_t n) { return static_cast<std::size_t>(u64(2) % n); }

  // A string of up to `max` bytes, any bytes at all: the length comes first.
  std::string str(std::size_t max = 64) {
    std::size_t n = below(max + 1);
    if (n > left_) n = left_;
    std::string s(reinterpret_cast<const char*>(p_), n);
    p_ += n;
    left_ -= n;
    return s;
  }
  // Everything that is left.
  std::string rest() { return str(left_); }

 private:
  const std::uint8_t* p_;
  std::size_t left_;
};

// Control characters a terminal acts on; `allowed` lists the ones a format
// may carry raw (newline for text).
inline bool has_control(std::string_view s, std::string_view allowed = "") {
  for (unsigned char c : s) {
    if ((c < 0x20 || c == 0x7f) && allowed.find(static_cast<char>(c)) == std::string_view::npos)
      return true;
  }
  return false;
}

// Well-formed UTF-8 (no overlongs, surrogates or code points above U+10FFFF).
inline bool is_utf8(std::string_view s) {
  std::size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    std::size_t n = 0;
    std::uint32_t cp = 0;
    if (c < 0x80) {
      ++i;
      continue;
    } else if ((c & 0xE0) == 0xC0) {
      n = 1;
      cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      n = 2;
      cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      n = 3;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (i + n >= s.size()) return false;  // truncated sequence
    for (std::size_t k = 1; k <= n; ++k) {
      const auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3F);
    }
    if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) ||
        cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
      return false;
    i += n + 1;
  }
  return true;
}

}  // namespace connleak::fuzz
