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

void sent(Activity& a) {
  a.statements.fetch_add(1, std::memory_order_relaxed);
  a.last_sent_mono.store(coarse_mono_ns(), std::memory_order_relaxed);
  a.in_flight.store(true, std::memory_order_relaxed);
}

}  // namespace

void note_statement(Activity& a, const char* sql, std::size_t n, Dialect dialect, bool cut) {
  sent(a);
  if (!sql) return;
  if (n == static_cast<std::size_t>(-1)) n = strnlen(sql, kRawBytes + 1);
  std::uint32_t flags = cut ? Activity::kCut : 0;
  if (n > kRawBytes) {
    n = kRawBytes;
    flags = Activity::kCut;
  }
  std::uint32_t s;
  if (!begin_write(a, s)) return;
  // Whole words with a fixed-size copy (one load each); only the last
  // partial word is copied byte-wise (never a read past the statement's end).
  // A variable-size memcpy per word was a libc call per 8 bytes.
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

void note_result(Activity& a, bool busy) {
  if (busy) {
    if (!a.in_flight.load(std::memory_order_relaxed))
      a.in_flight.store(true, std::memory_order_relaxed);
    return;
  }
  if (!a.in_flight.load(std::memory_order_relaxed)) return;  // nothing was pending: no clock read
  a.last_done_mono.store(coarse_mono_ns(), std::memory_order_relaxed);
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
