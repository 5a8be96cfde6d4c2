// The SQL normalizer: literals become `?`, comments go, whitespace collapses,
// and nothing that was inside a literal survives, whatever the input.
#include "collector/activity/normalize.h"

#include <gtest/gtest.h>

#include <random>
#include <string>

namespace {

using connleak::activity::Dialect;
using connleak::activity::first_keyword_only;
using connleak::activity::kMaxNormalizedChars;
using connleak::activity::normalize_sql;

std::string pg(std::string_view s, bool cut = false) {
  return normalize_sql(s, Dialect::kPostgres, cut);
}
std::string my(std::string_view s, bool cut = false) {
  return normalize_sql(s, Dialect::kMysql, cut);
}

std::size_t code_points(const std::string& s) {
  std::size_t n = 0;
  for (char c : s) n += (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  return n;
}

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

TEST(Normalize, LiteralsBecomePlaceholders) {
  EXPECT_EQ(pg("SELECT * FROM users WHERE id = 42"), "SELECT * FROM users WHERE id = ?");
  EXPECT_EQ(pg("select a, 'x', 3.5e-3, .5, 0x1F, 1_000 from t where n='it''s'"),
            "select a, ?, ?, ?, ?, ? from t where n=?");
  EXPECT_EQ(pg("SELECT X'1F', B'0101', N'abc', U&'d\\0061t'"), "SELECT ?, ?, ?, ?");
  EXPECT_EQ(pg("SELECT $1::int, $2 FROM t1"), "SELECT $1::int, $2 FROM t1");
  EXPECT_EQ(my("SELECT * FROM `my tbl` WHERE a = \"secret\" AND b = 'x' AND c = ?"),
            "SELECT * FROM `my tbl` WHERE a = ? AND b = ? AND c = ?");
  EXPECT_EQ(my("SELECT _utf8mb4'abc', 0x41, b'01'"), "SELECT _utf8mb4?, ?, ?");
}

TEST(Normalize, IdentifiersAndParametersStay) {
  EXPECT_EQ(pg("UPDATE \"Users\" SET a$b = $3 WHERE t2.c1 = 7"),
            "UPDATE \"Users\" SET a$b = $3 WHERE t2.c1 = ?");
}

TEST(Normalize, CommentsDroppedWhitespaceCollapsed) {
  EXPECT_EQ(pg("  SELECT\n\t1 -- it's a comment 'x\n  FROM /* a 'quote' */ t  "),
            "SELECT ? FROM t");
  EXPECT_EQ(pg("SELECT /* outer /* inner 'x' */ still comment ' */ 1"), "SELECT ?");
  EXPECT_EQ(my("SELECT 1 # hash comment 'x\n, 2"), "SELECT ? , ?");
  // MySQL comments do not nest: the first */ ends it.
  EXPECT_EQ(my("SELECT /* a /* b */ 1"), "SELECT ?");
  EXPECT_EQ(my("/*!50000 SET PASSWORD = 'hunter2' */ SELECT 1"), "SELECT ?");
}

TEST(Normalize, SecretsNeverSurvive) {
  const char* pg_cases[] = {
      "ALTER ROLE app PASSWORD 'hunter2'",
      "ALTER ROLE app WITH ENCRYPTED PASSWORD E'hun\\'ter2'",
      "CREATE USER bob WITH PASSWORD $pw$hunter2$pw$",
      "SELECT pgp_sym_encrypt(data, 'hunter2') FROM t",
      "COPY t FROM PROGRAM 'curl -u x:hunter2 http://h'",
      "SELECT $a$ outer $b$ inner hunter2 $b$ still $a$",
  };
  for (const char* sql : pg_cases) {
    std::string out = pg(sql);
    EXPECT_EQ(out.find("hunter2"), std::string::npos) << sql << " -> " << out;
    EXPECT_EQ(out.find("curl"), std::string::npos) << out;
  }
  const char* my_cases[] = {
      "CREATE USER 'bob'@'%' IDENTIFIED BY 'hunter2'",
      "SET PASSWORD = 'hunter2'",
      "SET PASSWORD FOR 'bob'@'localhost' = PASSWORD(\"hunter2\")",
      "ALTER USER bob IDENTIFIED BY 'it\\'s hunter2'",
      "SELECT AES_ENCRYPT('data', 'hunter2')",
  };
  for (const char* sql : my_cases) {
    std::string out = my(sql);
    EXPECT_EQ(out.find("hunter2"), std::string::npos) << sql << " -> " << out;
  }
  EXPECT_EQ(pg("ALTER ROLE app PASSWORD 'hunter2'"), "ALTER ROLE app PASSWORD ?");
  EXPECT_EQ(my("CREATE USER 'bob'@'%' IDENTIFIED BY 'hunter2'"), "CREATE USER ?@? IDENTIFIED BY ?");
}

TEST(Normalize, UntokenizableKeepsFirstKeywordOnly) {
  EXPECT_EQ(pg("UPDATE t SET p = 'hunter2"), "UPDATE \xe2\x80\xa6");
  EXPECT_EQ(pg("  -- lead\n select $x$ hunter2"), "SELECT \xe2\x80\xa6");
  EXPECT_EQ(pg("SELECT 1 /* never closed 'hunter2"), "SELECT \xe2\x80\xa6");
  EXPECT_EQ(pg("'hunter2"), "\xe2\x80\xa6");
  EXPECT_EQ(my("INSERT INTO t VALUES (\"hunter2)"), "INSERT \xe2\x80\xa6");
  // \' escapes the quote by default; with NO_BACKSLASH_ESCAPES it does not:
  // only that reading tokenizes, so it is the one used.
  EXPECT_EQ(my("INSERT INTO t VALUES ('a\\')"), "INSERT INTO t VALUES (?)");
  EXPECT_EQ(first_keyword_only("/* x */ delete from t"), "DELETE \xe2\x80\xa6");
}

TEST(Normalize, EscapeStringsAndStandardConformingStringsOff) {
  EXPECT_EQ(pg("SELECT E'a\\'b', 'c'"), "SELECT ?, ?");
  // With standard_conforming_strings on, 'a\' ends at the second quote; off,
  // the literal runs on. Only one reading tokenizes: it is used.
  EXPECT_EQ(pg("SELECT 'C:\\dir\\', 'x'"), "SELECT ?, ?");
  // Both readings tokenize but disagree: fail closed.
  const char* split = "SELECT 'a\\', hunter2, 'b' -- '";
  EXPECT_EQ(pg(split), "SELECT \xe2\x80\xa6");
  // MySQL NO_BACKSLASH_ESCAPES: the same rule the other way round.
  EXPECT_EQ(my("SELECT 'a\\\\', 'b'"), "SELECT ?, ?");
}

TEST(Normalize, DollarQuotes) {
  EXPECT_EQ(pg("DO $$ BEGIN RAISE NOTICE 'x'; END $$"), "DO ?");
  EXPECT_EQ(pg("CREATE FUNCTION f() RETURNS int AS $body$ SELECT $q$ 1 $q$ $body$ LANGUAGE sql"),
            "CREATE FUNCTION f() RETURNS int AS ? LANGUAGE sql");
  EXPECT_EQ(pg("SELECT $tag$ a $other$ b $tag$, 2"), "SELECT ?, ?");
  EXPECT_EQ(pg("SELECT 1 $"), "SELECT ? $");
}

TEST(Normalize, LengthCappedWithEllipsisAtCodePointBoundary) {
  std::string sql = "SELECT ";
  for (int i = 0; i < 100; ++i) sql += "col\xc3\xa9" + std::to_string(i) + ", ";
  sql += "x FROM t";
  std::string out = pg(sql);
  EXPECT_EQ(code_points(out), kMaxNormalizedChars);
  EXPECT_TRUE(valid_utf8(out));
  EXPECT_EQ(out.substr(out.size() - 3), "\xe2\x80\xa6");
  // Exactly at the limit: no ellipsis.
  std::string exact = "SELECT " + std::string(kMaxNormalizedChars - 7, 'a');
  EXPECT_EQ(pg(exact), exact);
}

TEST(Normalize, MultiByteUtf8) {
  EXPECT_EQ(pg("SELECT * FROM café WHERE nom = 'Zoë' AND \"名前\" = 1"),
            "SELECT * FROM café WHERE nom = ? AND \"名前\" = ?");
  // Invalid bytes in identifiers become '?'; output stays valid UTF-8.
  std::string out = pg("SELECT \xff\xfe, a\xc3 FROM t");
  EXPECT_TRUE(valid_utf8(out)) << out;
  // A bounded copy cut inside a code point: the half code point is dropped.
  std::string cut = pg("SELECT caf\xc3", true);
  EXPECT_TRUE(valid_utf8(cut));
  EXPECT_EQ(cut, "SELECT caf\xe2\x80\xa6");
}

TEST(Normalize, CutCopies) {
  EXPECT_EQ(pg("UPDATE t SET p = 'hunter", true), "UPDATE t SET p = ?\xe2\x80\xa6");
  EXPECT_EQ(pg("SELECT $body$ hunt", true), "SELECT ?\xe2\x80\xa6");
  EXPECT_EQ(pg("SELECT 1 /* hunt", true), "SELECT ?\xe2\x80\xa6");
  EXPECT_EQ(pg("SELECT 1", true), "SELECT ?\xe2\x80\xa6");
}

TEST(Normalize, OneMegabyteStatements) {
  std::string big = "INSERT INTO t VALUES ('" + std::string(1 << 20, 'h') + "')";
  EXPECT_EQ(pg(big), "INSERT INTO t VALUES (?)");
  std::string many = "SELECT ";
  for (int i = 0; i < 200000; ++i) many += "1,";
  many += "1";
  std::string out = pg(many);
  EXPECT_EQ(code_points(out), kMaxNormalizedChars);
  std::string unterminated = "UPDATE t SET x = '" + std::string(1 << 20, 'h');
  EXPECT_EQ(pg(unterminated), "UPDATE \xe2\x80\xa6");
}

// Random statements built from well-formed tokens: literals holding a secret
// among hostile characters (quotes, escapes, comment markers, dollar tags),
// comments holding quotes, words. No secret may come out, whatever the mix.
std::string random_literal(std::mt19937& rng, Dialect d) {
  auto pick = [&](std::initializer_list<const char*> list) {
    return std::string(*(list.begin() + rng() % list.size()));
  };
  std::string body = "SECRETXYZ";
  for (int k = static_cast<int>(rng() % 4); k > 0; --k) {
    body += d == Dialect::kPostgres
                ? pick({"''", "\"", "$$", "--", "/*", "*/", "#", "`", "\xc3\xa9", " "})
                : pick({"''", "\\'", "\\\\", "\"", "`", "--", "/*", "#", "\xc3\xa9"});
    body += "SECRETXYZ";
  }
  if (d == Dialect::kPostgres) {
    switch (rng() % 4) {
      case 0:
        return "'" + body + "'";
      case 1:
        return "E'" + body + "\\'" + pick({"\\\\", "''", "\\n"}) + "'";
      case 2:
        return "$t$ " + body + " $u$ ' $u$ $t$";
      default:
        return "X'" + std::string("1F") + "'" + " '" + body + "'";
    }
  }
  if (rng() % 2) return "'" + body + "'";
  std::string dq;
  for (char c : body) dq += c == '"' ? std::string("\\\"") : std::string(1, c);
  return "\"" + dq + "\"";
}

TEST(Normalize, RandomStatementsLeakNoLiteral) {
  std::mt19937 rng(12345);
  for (int iter = 0; iter < 20000; ++iter) {
    for (Dialect d : {Dialect::kPostgres, Dialect::kMysql}) {
      std::string sql;
      int parts = 1 + static_cast<int>(rng() % 10);
      for (int p = 0; p < parts; ++p) {
        switch (rng() % 6) {
          case 0:
          case 1:
            sql += random_literal(rng, d);
            break;
          case 2:
            sql += "/* ' \" $$ */";
            break;
          case 3:
            sql += d == Dialect::kMysql && rng() % 2 ? "# ' \"\n" : "-- ' */ \"\n";
            break;
          case 4:
            sql += "SELECT";
            break;
          default:
            sql += rng() % 2 ? "," : "=";
        }
        sql += rng() % 3 ? " " : "\n";
      }
      for (bool cut : {false, true}) {
        // The bounded copy may end anywhere.
        std::string in = cut ? sql.substr(0, rng() % (sql.size() + 1)) : sql;
        std::string out = normalize_sql(in, d, cut);
        EXPECT_EQ(out.find("SECRET"), std::string::npos) << in << " -> " << out;
        EXPECT_TRUE(valid_utf8(out)) << in;
        EXPECT_LE(code_points(out), kMaxNormalizedChars);
      }
    }
  }
}

// Arbitrary junk: no crash, valid UTF-8, within the cap.
TEST(Normalize, RandomJunkStaysBounded) {
  std::mt19937 rng(777);
  const char* pieces[] = {"'",      "''",       "\"",   "$$", "$t$", "E'",  "\\", "--",
                          "\n",     "/*",       "*/",   "#",  "`",   " ",   "x",  "1",
                          "SELECT", "\xc3\xa9", "\xff", "U&", "$1",  "\xe5"};
  for (int iter = 0; iter < 20000; ++iter) {
    std::string sql;
    int parts = 1 + static_cast<int>(rng() % 12);
    for (int p = 0; p < parts; ++p) sql += pieces[rng() % (sizeof pieces / sizeof *pieces)];
    for (Dialect d : {Dialect::kPostgres, Dialect::kMysql}) {
      for (bool cut : {false, true}) {
        std::string out = normalize_sql(sql, d, cut);
        EXPECT_TRUE(valid_utf8(out)) << sql;
        EXPECT_LE(code_points(out), kMaxNormalizedChars);
      }
    }
  }
}

}  // namespace
