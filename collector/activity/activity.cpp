#include "collector/activity/activity.h"

#include <time.h>

#include <bit>
#include <cstdio>
#include <cstring>

namespace connleak::activity {

void Activity::reset() {
  seq.store(0, std::memory_order_relaxed);
  statements.store(0, std::memory_order_relaxed);
  last_sent_mono.store(0, std::memory_order_relaxed);
  last_done_mono.store(0, std::memory_order_relaxed);
  in_flight.store(false, std::memory_order_relaxed);
  last_sent_tsc.store(0, std::memory_order_relaxed);
  len.store(0, std::memory_order_relaxed);
  prepared.store(nullptr, std::memory_order_relaxed);
  pending_prepare.store(nullptr, std::memory_order_relaxed);
}

std::int64_t coarse_mono_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

namespace {

// Takes the write side of the seqlock; false if another writer holds it.
bool begin_write(Activity& a, std::uint32_t& s) {
  s = a.seq.load(std::memory_order_relaxed);
  if ((s & 1) || !a.seq.compare_exchange_strong(s, s + 1, std::memory_order_acquire,
                                                std::memory_order_relaxed))
    return false;
  std::atomic_thread_fence(std::memory_order_release);
  return true;
}

void end_write(Activity& a, std::uint32_t s) {
  a.seq.store(s + 2, std::memory_order_release);
}

// The cycle counter (x86-64: rdtsc, one instruction, no system call). Only
// "less than 2^22 ticks apart" is asked of it, so its frequency needs no
// calibration: an x86-64 TSC runs at 1 GHz or more, so that is <= ~4 ms,
// about one tick of the coarse clock (1-4 ms), far below the 0.1 s idle
// times are reported in. A counter that is not
// synchronized across CPUs errs by its skew at most; one that went backwards
// gives a huge difference, and the clock is read.
std::uint64_t cycles() {
#if defined(__x86_64__)
  return __builtin_ia32_rdtsc();
#else
  return 0;
#endif
}
#if defined(__x86_64__)
constexpr std::uint64_t kSameTick = std::uint64_t{1} << 22;
#else
constexpr std::uint64_t kSameTick = 0;  // no cheap counter: always read the clock
#endif

void sent(Activity& a) {
  a.statements.fetch_add(1, std::memory_order_relaxed);
  a.last_sent_mono.store(coarse_mono_ns(), std::memory_order_relaxed);
  a.last_sent_tsc.store(cycles(), std::memory_order_relaxed);
  a.in_flight.store(true, std::memory_order_relaxed);
}

constexpr std::uint64_t kOnes = 0x0101010101010101ull;
constexpr std::uint64_t kHighs = 0x8080808080808080ull;
// A bit set in the lowest zero byte of `v` (bits above it may be wrong).
inline std::uint64_t zero_byte(std::uint64_t v) {
  return (v - kOnes) & ~v & kHighs;
}
inline unsigned first_zero(std::uint64_t z) {
  return static_cast<unsigned>(__builtin_ctzll(z)) / 8;
}
// The low `bytes` (0..7) bytes of a word.
inline std::uint64_t low_bytes(std::uint64_t v, unsigned bytes) {
  return v & ((std::uint64_t{1} << (8 * bytes)) - 1);
}
using Word = std::uint64_t __attribute__((may_alias));

// Copies a NUL-terminated statement into a.raw while finding its end, one
// ALIGNED word at a time (an aligned load never crosses into an unmapped
// page, so reading the bytes after the NUL in the same word is safe; the
// copy keeps none of them). Returns the statement's length, or more than
// kRawBytes when it is longer (only kRawBytes + 8 bytes are looked at).
// Replaces a strnlen pass and a second pass for the copy. Not instrumented
// by AddressSanitizer, which would see the bytes past the NUL as an overflow.
__attribute__((no_sanitize("address", "hwaddress"))) std::size_t copy_terminated(Activity& a,
                                                                                 const char* sql) {
  constexpr std::size_t kWords = kRawBytes / 8;
  const auto p = reinterpret_cast<std::uintptr_t>(sql);
  const unsigned off = p & 7;
  const auto* w = reinterpret_cast<const Word*>(p - off);
  if (off == 0) {  // malloc'd text: out word i is w[i]
    for (std::size_t i = 0; i < kWords; ++i) {
      const std::uint64_t v = w[i];
      if (const std::uint64_t z = zero_byte(v)) {
        const unsigned k = first_zero(z);
        a.raw[i].store(low_bytes(v, k), std::memory_order_relaxed);
        return i * 8 + k;
      }
      a.raw[i].store(v, std::memory_order_relaxed);
    }
    return sql[kRawBytes] ? kRawBytes + 1 : kRawBytes;
  }
  // Out word i = the high 8 - off bytes of w[i] and the low off bytes of
  // w[i + 1]. The bytes before the statement are set non-zero for the scan.
  const unsigned sh = 8 * off;
  std::uint64_t cur = w[0] | ((std::uint64_t{1} << sh) - 1);
  if (const std::uint64_t z = zero_byte(cur)) {
    const unsigned n = first_zero(z) - off;
    a.raw[0].store(low_bytes(cur >> sh, n), std::memory_order_relaxed);
    return n;
  }
  for (std::size_t i = 0; i < kWords; ++i) {
    const std::uint64_t next = w[i + 1];
    // One double-width shift (shrd) instead of two shifts and an or.
    const auto out =
        static_cast<std::uint64_t>(((static_cast<unsigned __int128>(next) << 64) | cur) >> sh);
    if (const std::uint64_t z = zero_byte(next)) {
      const std::size_t n = 8 * i + 8 - off + first_zero(z);
      const std::size_t in_word = n - 8 * i;  // >= 8 - off
      if (in_word < 8) {
        a.raw[i].store(low_bytes(out, static_cast<unsigned>(in_word)), std::memory_order_relaxed);
        return n;
      }
      a.raw[i].store(out, std::memory_order_relaxed);
      if (i + 1 < kWords)
        a.raw[i + 1].store(low_bytes(next >> sh, static_cast<unsigned>(in_word - 8)),
                           std::memory_order_relaxed);
      return n;
    }
    a.raw[i].store(out, std::memory_order_relaxed);
    cur = next;
  }
  return kRawBytes + 1;  // no NUL in the first kRawBytes + 8 - off bytes
}

// A statement of known length: whole words with a fixed-size copy (one load
// each), the last partial word byte-wise (never a read past its end).
void copy_counted(Activity& a, const char* sql, std::size_t n) {
  const std::size_t whole = n / 8;
  for (std::size_t w = 0; w < whole; ++w) {
    std::uint64_t word;
    std::memcpy(&word, sql + w * 8, 8);
    a.raw[w].store(word, std::memory_order_relaxed);
  }
  if (const std::size_t tail = n % 8) {
    std::uint64_t word = 0;
    auto* bytes = reinterpret_cast<unsigned char*>(&word);
    for (std::size_t i = 0; i < tail; ++i)
      bytes[i] = static_cast<unsigned char>(sql[whole * 8 + i]);
    a.raw[whole].store(word, std::memory_order_relaxed);
  }
}

}  // namespace

void note_statement(Activity& a, const char* sql, std::size_t n, Dialect dialect, bool cut) {
  sent(a);
  if (!sql) return;
  std::uint32_t s;
  if (!begin_write(a, s)) return;
  std::uint32_t flags = cut ? Activity::kCut : 0;
  if (n == static_cast<std::size_t>(-1)) {
    n = copy_terminated(a, sql);
  } else {
    copy_counted(a, sql, n < kRawBytes ? n : kRawBytes);
  }
  if (n > kRawBytes) {
    n = kRawBytes;
    flags = Activity::kCut;
  }
  a.len.store(static_cast<std::uint32_t>(n) | flags, std::memory_order_relaxed);
  a.dialect.store(static_cast<std::uint8_t>(dialect), std::memory_order_relaxed);
  a.prepared.store(nullptr, std::memory_order_relaxed);
  end_write(a, s);
}

void note_prepared(Activity& a, const char* normalized) {
  sent(a);
  std::uint32_t s;
  if (!begin_write(a, s)) return;
  a.prepared.store(normalized, std::memory_order_relaxed);
  end_write(a, s);
}

void note_untexted(Activity& a) {
  sent(a);
}

// A result was read after a statement in flight. A result read within 2^22
// cycles (<= ~4 ms) of the send takes the send's coarse time: the coarse
// clock ticks every 1-4 ms, so a second read would say the same or a tick or
// so more, and idle times are reported in tenths of seconds. One clock read per query
// instead of two.
void note_result_done(Activity& a) {
  const std::uint64_t since = cycles() - a.last_sent_tsc.load(std::memory_order_relaxed);
  a.last_done_mono.store(
      since < kSameTick ? a.last_sent_mono.load(std::memory_order_relaxed) : coarse_mono_ns(),
      std::memory_order_relaxed);
  a.in_flight.store(false, std::memory_order_relaxed);
}

bool read_activity(const Activity& a, ActivityView& out) {
  out.statements = a.statements.load(std::memory_order_relaxed);
  const std::int64_t sent_at = a.last_sent_mono.load(std::memory_order_relaxed);
  const std::int64_t done_at = a.last_done_mono.load(std::memory_order_relaxed);
  out.last_used_mono = sent_at > done_at ? sent_at : done_at;
  out.in_flight = a.in_flight.load(std::memory_order_relaxed);
  if (out.statements == 0) return false;
  char buf[kRawBytes];
  for (int attempt = 0; attempt < 64; ++attempt) {
    const std::uint32_t s1 = a.seq.load(std::memory_order_acquire);
    if (s1 & 1) continue;
    const std::uint32_t len = a.len.load(std::memory_order_relaxed);
    const char* prepared = a.prepared.load(std::memory_order_relaxed);
    const auto dialect = static_cast<Dialect>(a.dialect.load(std::memory_order_relaxed));
    const std::size_t n = len & ~Activity::kCut;
    for (std::size_t w = 0; w * 8 < n && n <= kRawBytes; ++w) {
      const std::uint64_t word = a.raw[w].load(std::memory_order_relaxed);
      std::memcpy(buf + w * 8, &word, n - w * 8 < 8 ? n - w * 8 : 8);
    }
    std::atomic_thread_fence(std::memory_order_acquire);
    if (a.seq.load(std::memory_order_relaxed) != s1) continue;
    if (prepared) {
      out.last_statement = prepared;
    } else if (n > 0 && n <= kRawBytes) {
      out.last_statement =
          normalize_sql(std::string_view(buf, n), dialect, (len & Activity::kCut) != 0);
    }
    return true;
  }
  return true;  // a writer kept the text busy: count and times only
}

std::string describe_activity(std::uint64_t statements, const std::string& last_statement,
                              double idle_seconds, bool busy) {
  if (statements == 0) return "";
  char tail[96];
  if (busy)
    std::snprintf(tail, sizeof tail, " (%llu statement%s, running %.1f s)",
                  static_cast<unsigned long long>(statements), statements == 1 ? "" : "s",
                  idle_seconds);
  else
    std::snprintf(tail, sizeof tail, " (%llu statement%s, idle %.1f s)",
                  static_cast<unsigned long long>(statements), statements == 1 ? "" : "s",
                  idle_seconds);
  return "last: " + (last_statement.empty() ? std::string("?") : last_statement) + tail;
}

}  // namespace connleak::activity
