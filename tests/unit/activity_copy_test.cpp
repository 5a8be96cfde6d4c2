// The raw statement copy on the query hot path (note_statement) read back by
// the report side (read_activity): every length, so that each tail size of the
// word-wise copy (0..7 bytes after 0..n whole words) and the 384-byte cut are
// exercised. A byte lost, shifted or read past the end shows as a different text.
#include <gtest/gtest.h>

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

}  // namespace
