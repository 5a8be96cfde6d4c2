#include "collector/policy/redact.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

namespace connleak {
namespace {

struct Case {
  const char* input;
  const char* expected;
  // Every spelling of the secret that must be absent from the output.
  std::vector<std::string> secrets;
};

void PrintTo(const Case& c, std::ostream* os) {
  *os << c.input;
}

class RedactConninfoTable : public ::testing::TestWithParam<Case> {};

TEST_P(RedactConninfoTable, ExactOutputAndNoSecret) {
  const Case& c = GetParam();
  const std::string out = redact_conninfo(std::string_view(c.input));
  EXPECT_EQ(out, c.expected);
  for (const std::string& secret : c.secrets) {
    EXPECT_EQ(out.find(secret), std::string::npos) << "secret '" << secret << "' in: " << out;
  }
}

const Case kConninfoCases[] = {
    // Keyword form.
    {"host=h port=5 password='x y' dbname=d", "host=h port=5 dbname=d", {"x y"}},
    {"host=localhost password=s3cr3t user=app dbname=app",
     "host=localhost dbname=app user=app",
     {"s3cr3t"}},
    {"PASSWORD = hunter2 host=h", "host=h", {"hunter2"}},
    {R"(password='it\'s \\ a s3cret' host=h user=u)",
     "host=h user=u",
     {"s3cret", "it's", R"(it\'s)"}},
    {"sslpassword=k3ypass sslmode=verify-full host=h", "host=h sslmode=verify-full", {"k3ypass"}},
    {"host=h password=", "host=h", {"password"}},
    // libpq skips blanks after '=', so the password here is "host=h" and no host is set.
    {"password= host=h", "", {"host"}},
    {R"(host=h application_name=app\ name password=x\ y\ z)",
     "host=h application_name='app name'",
     {"x y z", R"(x\ y)", "z"}},
    {"host=h options='-c password=zz9' user=u", "host=h user=u", {"zz9"}},
    {"host=h\tpassword=tabsecret\nuser=u", "host=h user=u", {"tabsecret"}},
    {"host='my host' dbname='' user=app", "host='my host' dbname='' user=app", {}},
    {"service=prod user=o'brien", R"(user='o\'brien' service=prod)", {}},
    {"hostaddr=10.0.0.1 port=6432 host=a host=b", "host=b hostaddr=10.0.0.1 port=6432", {}},
    {"password='p@ss:w/rd%40 \"q\"' host=h", "host=h", {"p@ss", "w/rd", "%40", "\"q\""}},
    {"password='pässwörd✓' user=ünïcode", "user=ünïcode", {"pässwörd✓", "pässw"}},
    // A dbname that is itself a URI or conninfo is kept, minus its secret.
    {"dbname='postgresql://u:t0psecret@h/db'", "dbname=postgresql://u@h/db", {"t0psecret"}},
    {"dbname='host=h password=xyzzy'", "dbname=host=h", {"xyzzy"}},
    {"host=h password='unterminated", "<unparsable conninfo>", {"unterminated"}},
    {"just some words", "<unparsable conninfo>", {"just", "words"}},
    {"", "", {}},
    {"   \t ", "", {}},

    // URI form.
    {"postgresql://user:secret@h1:5432,h2/db?sslmode=require&password=qpw99",
     "host=h1,h2 port=5432, dbname=db user=user sslmode=require",
     {"secret", "qpw99"}},
    {"postgres://u:p%40ss%2Fw0rd@db.example.com/app",
     "host=db.example.com dbname=app user=u",
     {"p%40ss", "p@ss", "w0rd"}},
    {"postgresql://u:p@ss@h/db", "host=h dbname=db user=u", {"p@ss", "ss@"}},
    {"postgresql://u:pa:ss:w@h", "host=h user=u", {"pa:ss", "ss:w"}},
    {"postgresql://u:my secret pw@h/db", "host=h dbname=db user=u", {"secret"}},
    {"postgresql://%75ser:s%C3%A9cr%C3%A9t@[::1]:5433/my%20db?application_name=my%20app",
     "host=::1 port=5433 dbname='my db' user=user application_name='my app'",
     {"s%C3%A9cr", "sécrét", "cr"}},
    {"postgresql://üser:pässwörd✓@hôst/dä", "host=hôst dbname=dä user=üser", {"pässwörd✓"}},
    {"postgresql://u:pw@h/db?sslpassword=sslsecret&ssl=true",
     "host=h dbname=db user=u sslmode=require",
     {"sslsecret", "pw"}},
    {"postgresql:///db?host=/var/run/postgresql&user=me",
     "host=/var/run/postgresql dbname=db user=me",
     {}},
    {"postgresql://h/db?password=a%26b%3Dc", "host=h dbname=db", {"a%26b", "a&b=c"}},
    {"postgresql://h/db?dbname=postgresql%3A%2F%2Fu%3Ainner%40x%2Fy",
     "host=h dbname=postgresql://u@x/y",
     {"inner"}},
    {"POSTGRESQL://U:Secret1@H/D", "host=H dbname=D user=U", {"Secret1"}},
    {"postgresql://:only5ecret@h", "host=h", {"only5ecret"}},
    {"postgresql://h,h2:5433/db", "host=h,h2 port=,5433 dbname=db", {}},
    {"postgresql://u:x@h/db?password=p1x&password=p2x", "host=h dbname=db user=u", {"p1x", "p2x"}},
    {"  postgresql://u:padded@h  ", "host=h user=u", {"padded"}},
    // Ambiguous or malformed: never a guess, never an echo.
    {"postgresql://u:se/cret@h/db", "<unparsable conninfo>", {"cret", "se/"}},
    {"postgresql://u:pa?ss@h/db", "<unparsable conninfo>", {"pa?ss", "ss@"}},
    {"postgresql://u:pw@h/my@db", "<unparsable conninfo>", {"pw"}},
    {"postgresql://u:pwbad@h%ZZ/db", "<unparsable conninfo>", {"pwbad"}},
    {"postgresql://u:pwnul@h/db%00x", "<unparsable conninfo>", {"pwnul"}},
    {"postgresql://u:pwamp@h/db?a=b&&c=d", "<unparsable conninfo>", {"pwamp"}},
    {"postgresql://u:pwbr@[::1/db", "<unparsable conninfo>", {"pwbr"}},
};

INSTANTIATE_TEST_SUITE_P(Cases, RedactConninfoTable, ::testing::ValuesIn(kConninfoCases));

TEST(RedactConninfo, NullPointerIsEmpty) {
  EXPECT_EQ(redact_conninfo(static_cast<const char*>(nullptr)), "");
  EXPECT_EQ(redact_conninfo("host=h password=x"), "host=h");
}

TEST(RedactConninfo, StopsAtEmbeddedNulLikeLibpq) {
  const std::string s("host=h\0password=x", 17);
  EXPECT_EQ(redact_conninfo(std::string_view(s)), "host=h");
}

TEST(RedactConninfo, QuotedOutputRoundTripsThroughTheParser) {
  const std::string once = redact_conninfo(R"(host='a b\'c\\d' user='')");
  EXPECT_EQ(once, R"(host='a b\'c\\d' user='')");
  EXPECT_EQ(redact_conninfo(std::string_view(once)), once);
}

TEST(RedactParams, KeepsWhitelistedKeysInFixedOrder) {
  const char* k[] = {"password", "user", "dbname", "port", "host", "sslpassword", nullptr};
  const char* v[] = {"s3cret", "u", "d", "5432", "h", "k3y", nullptr};
  const std::string out = redact_params(k, v, false);
  EXPECT_EQ(out, "host=h port=5432 dbname=d user=u");
  EXPECT_EQ(out.find("s3cret"), std::string::npos);
  EXPECT_EQ(out.find("k3y"), std::string::npos);
}

TEST(RedactParams, NullAndEmptyValuesAreSkipped) {
  const char* k[] = {"host", "host", "host", "user", nullptr};
  const char* v[] = {"h", "", nullptr, "u", nullptr};
  EXPECT_EQ(redact_params(k, v, false), "host=h user=u");
}

TEST(RedactParams, NullArraysAreEmpty) {
  const char* k[] = {nullptr};
  EXPECT_EQ(redact_params(nullptr, nullptr, true), "");
  EXPECT_EQ(redact_params(k, nullptr, true), "");
  EXPECT_EQ(redact_params(k, k, true), "");
}

TEST(RedactParams, WithoutExpandDbnameIsLiteralButScrubbed) {
  const char* k[] = {"dbname", nullptr};
  const char* v[] = {"postgresql://u:sec@h/db", nullptr};
  const std::string out = redact_params(k, v, false);
  EXPECT_EQ(out, "dbname=postgresql://u@h/db");
  EXPECT_EQ(out.find("sec"), std::string::npos);
}

TEST(RedactParams, ExpandedUriFieldsApplyAndLaterKeywordsWin) {
  const char* k[] = {"dbname", "user", nullptr};
  const char* v[] = {"postgresql://u:sec@h1/real?password=p2", "override", nullptr};
  const std::string out = redact_params(k, v, true);
  EXPECT_EQ(out, "host=h1 dbname=real user=override");
  EXPECT_EQ(out.find("sec"), std::string::npos);
  EXPECT_EQ(out.find("p2"), std::string::npos);
}

// libpq: array entries before the expanded dbname are overridden by the string's fields,
// entries after it override them.
TEST(RedactParams, ExpandedFieldsOverrideEarlierKeywords) {
  const char* k[] = {"host", "port", "dbname", "port", nullptr};
  const char* v[] = {"early", "1", "host=fromstr port=2 dbname=real password=pw9", "7", nullptr};
  const std::string out = redact_params(k, v, true);
  EXPECT_EQ(out, "host=fromstr port=7 dbname=real");
  EXPECT_EQ(out.find("pw9"), std::string::npos);
}

TEST(RedactParams, ExpandedEmptyValueOverridesToo) {
  const char* k[] = {"host", "dbname", nullptr};
  const char* v[] = {"a", "host='' dbname=z", nullptr};
  EXPECT_EQ(redact_params(k, v, true), "host='' dbname=z");
}

TEST(RedactParams, ExpandedStringWithoutDbnameLeavesNoDbname) {
  const char* k[] = {"dbname", nullptr};
  const char* v[] = {"host=h user=u password=x", nullptr};
  EXPECT_EQ(redact_params(k, v, true), "host=h user=u");
}

TEST(RedactParams, OnlyTheFirstDbnameIsExpanded) {
  const char* k[] = {"dbname", "dbname", nullptr};
  const char* v[] = {"host=a dbname=one", "host=b password=pp", nullptr};
  const std::string out = redact_params(k, v, true);
  EXPECT_EQ(out, "host=a dbname=host=b");
  EXPECT_EQ(out.find("pp"), std::string::npos);
}

// The search for "the first dbname" skips NULL values but stops at an empty one.
TEST(RedactParams, NullFirstDbnameIsSkippedEmptyOneIsNot) {
  const char* k[] = {"dbname", "dbname", nullptr};
  const char* null_first[] = {nullptr, "host=x dbname=y", nullptr};
  EXPECT_EQ(redact_params(k, null_first, true), "host=x dbname=y");
  const char* empty_first[] = {"", "host=x", nullptr};
  EXPECT_EQ(redact_params(k, empty_first, true), "dbname=host=x");
}

TEST(RedactParams, PlainDbnameIsNotExpanded) {
  const char* k[] = {"dbname", "host", nullptr};
  const char* v[] = {"mydb", "h", nullptr};
  EXPECT_EQ(redact_params(k, v, true), "host=h dbname=mydb");
}

TEST(RedactParams, UnparsableExpandedDbname) {
  const char* k[] = {"dbname", nullptr};
  const char* v[] = {"postgresql://u:pw@h/a@b", nullptr};
  EXPECT_EQ(redact_params(k, v, true), "<unparsable conninfo>");
}

struct ScrubCase {
  const char* input;
  const char* expected;
  std::vector<std::string> secrets;
};

void PrintTo(const ScrubCase& c, std::ostream* os) {
  *os << c.input;
}

class ScrubValueTable : public ::testing::TestWithParam<ScrubCase> {};

TEST_P(ScrubValueTable, ExactOutputAndNoSecret) {
  const ScrubCase& c = GetParam();
  const std::string out = scrub_value(c.input);
  EXPECT_EQ(out, c.expected);
  for (const std::string& secret : c.secrets) {
    EXPECT_EQ(out.find(secret), std::string::npos) << "secret '" << secret << "' in: " << out;
  }
}

const ScrubCase kScrubCases[] = {
    {"db.example.com", "db.example.com", {}},
    {"/var/run/postgresql", "/var/run/postgresql", {}},
    {"", "", {}},
    {"user=app", "user=app", {}},
    // The secret's text inside another (overridden) value goes too: fuzz_redact's
    // finding, tests/fuzz/corpus/redact/password-text-inside-another-value.
    {"host=localhoql:/issword=s3cr3t host=@upamecalhost password=s3cr3t user=app",
     "host=localhoql:/issword= host=@upamecalhost user=app",
     {"s3cr3t"}},
    {"application_name='pw=hunter22' password=hunter22", "application_name='pw='", {"hunter22"}},
    {"postgresql://u:pa%73s@h/db?application_name=pass",
     "postgresql://u@h/db?application_name=",
     {"pass"}},
    {"postgresql://u:secret@h/db", "postgresql://u@h/db", {"secret"}},
    {"mysql://root:pw%40x@h:3306/db", "mysql://root@h:3306/db", {"pw%40x"}},
    {"postgresql://u:se/cr@t@h/db", "postgresql://u@h/db", {"se/cr", "cr@t"}},
    {"postgresql://u@h:5432/db", "postgresql://u@h:5432/db", {}},
    {"postgresql://:justpw@h", "postgresql://@h", {"justpw"}},
    {"host=h password='a b' user=u", "host=h user=u", {"a b"}},
    {"host=h PASSWORD = x1y2", "host=h", {"x1y2"}},
    {"host=h sslpassword=\"dq secret\"", "host=h", {"dq secret", "secret"}},
    {R"(password='it\'s' host=h)", "host=h", {"it"}},
    {"password='unterminated host=h", "", {"unterminated"}},
    {"postgresql://h/db?sslmode=require&password=x9&user=u",
     "postgresql://h/db?sslmode=require&user=u",
     {"x9"}},
    {"postgresql://h/db?password=x9", "postgresql://h/db", {"x9"}},
    {"postgresql://h/db?user=u&password=a b", "postgresql://h/db?user=u", {"a b"}},
    {"Server=h;Pwd=abc123;Uid=u", "Server=h;Uid=u", {"abc123"}},
    {"host=h passwd=mysqlpw", "host=h", {"mysqlpw"}},
    {"db_password=dbpw host=h", "host=h", {"dbpw"}},
    // Over-redaction is accepted when an '@' follows the authority.
    {"postgresql://h:5432/db?user=me@corp", "postgresql://h@corp", {}},
    // The two rules must not undercut each other: a fragment rule deleting "pwd=x@h" first
    // would hide where the URI password ends, a URI rule deleting "password=p" first would
    // leave "@ss" plus the rest of that password behind.
    {"postgresql://u:sec&pwd=x@h/db", "postgresql://u", {"sec", "x@"}},
    {"postgresql://h:1/x password=p@sstail", "postgresql://h", {"sstail", "p@"}},
    // Fragments nested in another quoted value, where every escape is doubled.
    {R"(application_name='host=h password=\'a b\' user=u')", "application_name='host=h", {"a b"}},
    {R"(application_name='password=a\\ bsecret x=y')", "application_name='x=y'", {"bsecret"}},
};

INSTANTIATE_TEST_SUITE_P(Cases, ScrubValueTable, ::testing::ValuesIn(kScrubCases));

// Randomized: secrets built from every awkward character, spelled every way a caller could
// spell them (properly quoted or encoded, and raw), must never survive. Each secret is framed
// by markers so that any piece of it left behind is easy to spot.
class SecretFuzz : public ::testing::Test {
 protected:
  std::string random_secret() {
    static const std::vector<std::string> kPieces = {
        " ", "'", "\\", "\"", "@", ":",  "/",  "?", "%40", "%", "&",   "=",
        "#", ";", "é",  "✓",  "a", "Z9", "\t", ",", "[",   "]", "://", "password="};
    std::string s = "QJX";
    const int n = static_cast<int>(next() % 6);
    for (int i = 0; i < n; ++i) s += kPieces[next() % kPieces.size()];
    s += "QJX";
    for (int i = 0; i < n; ++i) s += kPieces[next() % kPieces.size()];
    return s + "QJX";
  }
  static std::string libpq_quote(const std::string& v) {
    std::string out = "'";
    for (char c : v) {
      if (c == '\'' || c == '\\') out += '\\';
      out += c;
    }
    return out + "'";
  }
  // libpq's unquoted spelling: every blank, quote and backslash escaped.
  static std::string libpq_escape(const std::string& v) {
    std::string out;
    for (char c : v) {
      if (c == ' ' || c == '\t' || c == '\'' || c == '\\') out += '\\';
      out += c;
    }
    return out;
  }
  static std::string percent_encode(const std::string& v) {
    static const char kHex[] = "0123456789ABCDEF";
    std::string out;
    for (unsigned char c : v) {
      if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) {
        out += static_cast<char>(c);
      } else {
        out += '%';
        out += kHex[c >> 4];
        out += kHex[c & 15];
      }
    }
    return out;
  }
  static void expect_clean(const std::string& out, const std::string& input) {
    EXPECT_EQ(out.find("QJX"), std::string::npos) << "input:  " << input << "\noutput: " << out;
  }
  std::uint64_t next() {
    state_ ^= state_ << 13;
    state_ ^= state_ >> 7;
    state_ ^= state_ << 17;
    return state_;
  }
  std::uint64_t state_ = 0x9e3779b97f4a7c15ULL;
};

TEST_F(SecretFuzz, NoSpellingOfARandomSecretSurvives) {
  for (int round = 0; round < 5000; ++round) {
    const std::string secret = random_secret();
    const std::vector<std::string> conninfos = {
        "host=h password=" + libpq_quote(secret) + " user=u",
        "password = " + libpq_quote(secret),
        "sslpassword=" + libpq_quote(secret) + " dbname=d",
        "postgresql://u:" + percent_encode(secret) + "@h:5432/db?sslmode=require",
        "postgresql://u:" + secret + "@h/db",
        "postgresql://u:" + secret + "@h",
        "postgres://h/db?password=" + percent_encode(secret) + "&user=u",
        "dbname=" + libpq_quote("postgresql://u:" + percent_encode(secret) + "@h/db"),
        "dbname=" + libpq_quote("postgresql://u:" + secret + "@h/db"),
        "application_name=" + libpq_quote("host=h password=" + libpq_quote(secret)),
        "application_name=" + libpq_quote("host=h password=" + libpq_escape(secret) + " x=y"),
        "application_name=" +
            libpq_quote("options=" + libpq_quote("password=" + libpq_quote(secret))),
        "host=h password=" + libpq_escape(secret) + " user=u",
    };
    for (const std::string& c : conninfos) {
      expect_clean(redact_conninfo(std::string_view(c)), c);
      expect_clean(scrub_value(c), c);
      const char* k[] = {"dbname", "user", nullptr};
      const char* v[] = {c.c_str(), "u", nullptr};
      expect_clean(redact_params(k, v, true), c);
      expect_clean(redact_params(k, v, false), c);
      expect_clean(format_target({{"host", "h"}, {"dbname", c}}), c);
    }
    // Values read back from a handle, e.g. a non-expanded dbname.
    for (const std::string& v :
         {"mysql://root:" + secret + "@h:3306/db", "x password=" + libpq_quote(secret) + " y",
          "Server=h;Pwd=" + secret}) {
      if (v.find(';', 13) != std::string::npos && v.rfind("Server", 0) == 0) continue;
      expect_clean(scrub_value(v), v);
    }
    if (HasFailure()) return;
  }
}

TEST(FormatTarget, SkipsEmptyPartsKeepsOrder) {
  EXPECT_EQ(format_target({{"host", "h"}, {"port", "3306"}, {"dbname", ""}, {"user", "root"}}),
            "host=h port=3306 user=root");
  EXPECT_EQ(format_target({{"user", "u"}, {"host", "h"}}), "user=u host=h");
  EXPECT_EQ(format_target({}), "");
}

TEST(FormatTarget, QuotesLikeLibpq) {
  EXPECT_EQ(format_target({{"host", "my host"}, {"user", "o'b\\x"}}),
            R"(host='my host' user='o\'b\\x')");
  EXPECT_EQ(format_target({{"unix_socket", "/tmp/mysql.sock"}}), "unix_socket=/tmp/mysql.sock");
}

TEST(FormatTarget, ScrubsValuesAndDropsPasswordKeys) {
  const std::string out = format_target(
      {{"host", "mysql://root:pw1@h"}, {"passwd", "pw2"}, {"PASSWORD", "pw3"}, {"db", "d"}});
  EXPECT_EQ(out, "host=mysql://root@h db=d");
  for (const char* s : {"pw1", "pw2", "pw3"}) EXPECT_EQ(out.find(s), std::string::npos);
}

TEST(FormatTarget, PartThatScrubsToNothingIsSkipped) {
  EXPECT_EQ(format_target({{"host", "h"}, {"dbname", "password=x"}}), "host=h");
}

}  // namespace
}  // namespace connleak
