// The raw statement copy on the query hot path (note_statement) read back by
// the report side (read_activity): every length, so that each tail size of the
// word-wise copy (0..7 bytes after 0..n whole words) and the 384-byte cut are
// exercised. A byte lost, shifted or read past the end shows as a different text.
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstring>
#include <memory>
#include <string>

#include "collector/activity/activity.h"

namespace {

using connleak::activity::Activity;
using connleak::activity::ActivityView;
using connleak::activity::Dialect;
using connleak::activity::kRawBytes;
using connleak::activity::normalize_sql;
using connleak::activity::note_statement;
using connleak::activity::read_activity;

// "SELECT " and one identifier of letters: the normalizer keeps it as it is
// (no literal, no whitespace to collapse) up to its length limit.
std::string statement(std::size_t n) {
  std::string s = "SELECT ";
  for (std::size_t i = 0; s.size() < n; ++i) s += static_cast<char>('a' + i % 26);
  return s.substr(0, n);
}

std::string recorded(const std::string& sql, std::size_t n) {
  auto a = std::make_unique<Activity>();
  note_statement(*a, sql.c_str(), n, Dialect::kPostgres);
  ActivityView view;
  EXPECT_TRUE(read_activity(*a, view));
  EXPECT_EQ(view.statements, 1u);
  return view.last_statement;
}

TEST(ActivityCopy, EveryLengthReadsBackExactly) {
  for (std::size_t n = 8; n <= 150; ++n) {  // from "SELECT a": no trailing blank
    // A heap copy of exactly n bytes plus its NUL: a read past the end is
    // AddressSanitizer's to catch in the sanitizer build.
    const std::string sql = statement(n);
    ASSERT_EQ(recorded(sql, static_cast<std::size_t>(-1)), sql) << "length " << n;
    ASSERT_EQ(recorded(sql, n), sql) << "length " << n << " (length given)";
  }
}

TEST(ActivityCopy, ShortStatementsBelowOneWord) {
  for (const char* sql : {"SELECT", "BEGIN", "END", "COMMIT", "ROLLBACK"})
    EXPECT_EQ(recorded(sql, static_cast<std::size_t>(-1)), sql);
}

TEST(ActivityCopy, LongStatementsKeepTheFirst384BytesAndSayCut) {
  for (std::size_t n : {kRawBytes - 1, kRawBytes, kRawBytes + 1, std::size_t{1000}}) {
    const std::string sql = statement(n);
    const std::size_t kept = n > kRawBytes ? kRawBytes : n;
    EXPECT_EQ(
        recorded(sql, static_cast<std::size_t>(-1)),
        normalize_sql(std::string_view(sql).substr(0, kept), Dialect::kPostgres, n > kRawBytes))
        << "length " << n;
  }
}

// The NUL-terminated copy scans with aligned 8-byte loads: every start offset
// within a word (0..7), lengths around each word boundary and the cut, with
// other bytes right before the statement and after its NUL, none of which
// may show in the copy.
TEST(ActivityCopy, EveryAlignmentAndLengthReadsBackExactly) {
  alignas(8) char buf[512];
  for (std::size_t off = 0; off < 8; ++off) {
    for (std::size_t n = 1; n <= kRawBytes + 12; n += (n < 40 || n > kRawBytes - 12) ? 1 : 7) {
      if (off + n + 1 + 8 > sizeof buf) continue;
      std::memset(buf, 'y', sizeof buf);
      const std::string sql = statement(n);
      std::memcpy(buf + off, sql.data(), n);
      buf[off + n] = '\0';
      const std::size_t kept = n > kRawBytes ? kRawBytes : n;
      auto a = std::make_unique<Activity>();
      note_statement(*a, buf + off, static_cast<std::size_t>(-1), Dialect::kPostgres);
      ActivityView view;
      ASSERT_TRUE(read_activity(*a, view));
      ASSERT_EQ(view.last_statement, normalize_sql(std::string_view(sql).substr(0, kept),
                                                   Dialect::kPostgres, n > kRawBytes))
          << "offset " << off << " length " << n;
    }
  }
}

// A statement whose NUL is the last byte of a page followed by an unmapped
// page: the scan must not read into it (an unaligned word would).
TEST(ActivityCopy, StatementEndingAtAPageEndIsReadWithoutFault) {
  const auto page = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
  void* map = mmap(nullptr, 2 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(map, MAP_FAILED);
  char* base = static_cast<char*>(map);
  ASSERT_EQ(mprotect(base + page, page, PROT_NONE), 0);
  for (std::size_t n = 1; n <= 40; ++n) {
    const std::string sql = statement(n);
    char* start = base + page - 1 - n;  // every alignment as n varies
    std::memcpy(start, sql.data(), n);
    start[n] = '\0';
    auto a = std::make_unique<Activity>();
    note_statement(*a, start, static_cast<std::size_t>(-1), Dialect::kPostgres);
    ActivityView view;
    ASSERT_TRUE(read_activity(*a, view));
    EXPECT_EQ(view.last_statement, normalize_sql(sql, Dialect::kPostgres, false)) << "length " << n;
  }
  munmap(map, 2 * page);
}

}  // namespace
