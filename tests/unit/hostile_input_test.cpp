// Issue 20: report strings are the host's bytes. Neither a non-UTF-8 byte nor
// a control character may abort a writer, forge a line or reach a terminal raw.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "collector/policy/options.h"
#include "collector/policy/redact.h"
#include "collector/report/format/report_json.h"
#include "collector/report/format/report_junit.h"
#include "collector/report/format/report_sarif.h"
#include "collector/report/format/report_text.h"
#include "collector/util/printable.h"

namespace connleak {
namespace {

Report hostile_report(const std::string& text) {
  Report r;
  r.version = "0.1.0";
  r.pid = 77;
  r.argv = {"./prog", text};
  r.trigger = Trigger::kExit;
  Connection c;
  c.id = 1;
  c.library = ConnLibrary::kLibpq;
  c.handle = "0x1";
  c.target = "host=h dbname=" + text;
  c.status = ConnStatus::kLeaked;
  c.state = "connected";
  c.client_module = "/lib/" + text + "/libpq.so.5";
  Frame f;
  f.address = 0x401000;
  f.function = text;
  f.module = "/opt/" + text;
  c.acquired.native.push_back(f);
  r.connections.push_back(c);
  r.summary.opened = 1;
  r.summary.leaked = 1;
  r.summary.open = 1;
  return r;
}

TEST(HostileInput, ValidUtf8ReplacesEveryMalformedByte) {
  EXPECT_EQ(valid_utf8("caf\xe9"), "caf\xEF\xBF\xBD");
  EXPECT_EQ(valid_utf8("caf\xc3\xa9"), "caf\xc3\xa9");                            // already UTF-8
  EXPECT_EQ(valid_utf8("\xc0\xaf"), "\xEF\xBF\xBD\xEF\xBF\xBD");                  // overlong '/'
  EXPECT_EQ(valid_utf8("\xed\xa0\x80"), "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");  // surrogate
  EXPECT_EQ(valid_utf8("\xf0\x9f\x98"), "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");  // truncated
}

TEST(HostileInput, PrintableEscapesControlsAndBadBytes) {
  EXPECT_EQ(printable("a\nb\tc\x1b]0;pwned\x07"), "a\\nb\\tc\\e]0;pwned\\x07");
  EXPECT_EQ(printable("caf\xe9"), "caf\\xe9");
  EXPECT_EQ(printable("\xc2\x9b"
                      "31m"),
            "\\xc2\\x9b31m");  // C1 CSI
  EXPECT_EQ(printable("caf\xc3\xa9 C:\\dir"), "caf\xc3\xa9 C:\\dir");
}

// Without error_handler_t::replace nlohmann throws type_error.316 here, which
// killed the host at exit with SIGABRT.
TEST(HostileInput, EveryWriterAcceptsNonUtf8Bytes) {
  const Report r = hostile_report("caf\xe9");
  std::string json_text;
  ASSERT_NO_THROW(json_text = to_json_text(r));
  const nlohmann::json parsed = nlohmann::json::parse(json_text);  // valid UTF-8 now
  EXPECT_EQ(parsed.at("argv").at(1), "caf\xEF\xBF\xBD");
  EXPECT_NO_THROW(render_sarif(r, SarifOptions{}));
  std::string junit;
  ASSERT_NO_THROW(junit = render_junit(r, JunitOptions{}));
  EXPECT_EQ(junit.find('\xe9'), std::string::npos);
  EXPECT_NE(render_text(r).find("caf\\xe9"), std::string::npos) << render_text(r);
}

TEST(HostileInput, TextCannotForgeASummaryLineOrReachTheTerminal) {
  const Report r = hostile_report("evil\n\nSUMMARY: connleak: no leaks\x1b]0;title\x07");
  const std::string text = render_text(r);
  int summaries = 0;
  std::size_t start = 0;
  for (std::size_t nl; (nl = text.find('\n', start)) != std::string::npos; start = nl + 1)
    if (text.compare(start, 8, "SUMMARY:") == 0) ++summaries;
  EXPECT_EQ(summaries, 1) << text;
  EXPECT_EQ(text.find('\x1b'), std::string::npos) << text;
  EXPECT_EQ(text.find('\x07'), std::string::npos) << text;
  EXPECT_NE(text.find("evil\\n\\nSUMMARY: connleak: no leaks\\e]0;title\\x07"), std::string::npos)
      << text;
}

TEST(HostileInput, NegativeCountersAreRejectedWithOneClearReason) {
  nlohmann::json doc = to_json(hostile_report("x"));
  doc["summary"]["leaked"] = -5;
  try {
    report_from_json(doc);
    FAIL() << "a negative count was accepted";
  } catch (const std::invalid_argument& e) {
    EXPECT_STREQ(e.what(), "\"leaked\" is not an integer from 0 to 18446744073709551615");
  }
}

TEST(HostileInput, ThousandsOfUnknownOptionsGiveAFewLinesAndACount) {
  std::string text;
  for (int i = 0; i < 12000; ++i) text += "bogus" + std::to_string(i) + "=1:";
  std::vector<std::string> warnings;
  const Options o = parse_options(text + "verbosity=2", &warnings);
  EXPECT_EQ(o.verbosity, 2);
  ASSERT_LE(warnings.size(), 6u);
  EXPECT_EQ(warnings.back(), "connleak: ... and 11995 more option warnings not shown");
}

// libpq splits userinfo at the first '@' before the first '/': these URIs put
// pieces of the password into host, port or dbname.
TEST(HostileInput, UrisThatSplitTheirPasswordAreAmbiguous) {
  EXPECT_TRUE(uri_password_ambiguous("postgresql://u:sec@ret@host/db"));
  EXPECT_TRUE(uri_password_ambiguous("postgresql://u:pa/ss@host/db"));
  EXPECT_TRUE(uri_password_ambiguous("postgres://u:p:w@x/y@host/db"));
  EXPECT_FALSE(uri_password_ambiguous("postgresql://u:secret@host/db"));
  EXPECT_FALSE(uri_password_ambiguous("postgresql://host/db"));
  EXPECT_FALSE(uri_password_ambiguous("host=h password=a@b/c"));  // keyword form: libpq is exact
  const char* keys[] = {"dbname", nullptr};
  const char* vals[] = {"postgresql://u:sec@ret@host/db", nullptr};
  EXPECT_TRUE(params_password_ambiguous(keys, vals, true));
  EXPECT_FALSE(params_password_ambiguous(keys, vals, false));
}

TEST(HostileInput, TargetFieldsHoldingThePasswordAreLeftOut) {
  EXPECT_EQ(format_target_without("Zq7sec", {{"host", "Zq7sec.example"}, {"user", "u"}}), "user=u");
  EXPECT_EQ(format_target_without("hunter2pass", {{"dbname", "hunter"}, {"user", "app"}}),
            "user=app");
  EXPECT_EQ(format_target_without("", {{"host", "h"}, {"user", "u"}}), "host=h user=u");
  EXPECT_EQ(format_target_without("xy", {{"host", "xyz"}}), "host=xyz");  // too short to be a piece
}

}  // namespace
}  // namespace connleak
