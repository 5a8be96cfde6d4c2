#include "collector/policy/options.h"

#include <gtest/gtest.h>

#include <sstream>
#include <string>
#include <vector>

namespace connleak {
namespace {

// Every option name, straight from the single list, so these tests follow it.
std::vector<std::string> all_option_names() {
  std::vector<std::string> names;
#define CONNLEAK_FLAG(Type, name, def, desc) names.push_back(#name);
#include "collector/policy/options.inc"
  return names;
}

struct Parsed {
  Options options;
  std::vector<std::string> warnings;
};

Parsed parse(std::string_view text) {
  Parsed p;
  p.options = parse_options(text, &p.warnings);
  return p;
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

void expect_defaults(const Options& o) {
  EXPECT_TRUE(o.enabled);
  EXPECT_EQ(o.report_dir, "");
  EXPECT_EQ(o.stack_depth, 32);
  EXPECT_EQ(o.verbosity, 0);  // silent when clean, like LeakSanitizer
  EXPECT_FALSE(o.quiet);
  EXPECT_FALSE(o.help);
}

TEST(Options, Defaults) {
  expect_defaults(Options{});
}

TEST(Options, EmptyAndBlankTextGiveDefaultsWithoutWarnings) {
  for (std::string_view text : {"", "   ", ":", "::::", " : \t: "}) {
    const Parsed p = parse(text);
    expect_defaults(p.options);
    EXPECT_TRUE(p.warnings.empty()) << "text: '" << text << "'";
  }
}

TEST(Options, NullWarningsPointerIsAllowed) {
  const Options o = parse_options("bogus=1:stack_depth=x:verbosity=2", nullptr);
  EXPECT_EQ(o.verbosity, 2);
  EXPECT_EQ(o.stack_depth, 32);
}

TEST(Options, EveryTypeParses) {
  const Parsed p =
      parse("enabled=0:report_dir=/tmp/leaks:stack_depth=64:verbosity=2:quiet=yes:help=on");
  EXPECT_TRUE(p.warnings.empty());
  EXPECT_FALSE(p.options.enabled);
  EXPECT_EQ(p.options.report_dir, "/tmp/leaks");
  EXPECT_EQ(p.options.stack_depth, 64);
  EXPECT_EQ(p.options.verbosity, 2);
  EXPECT_TRUE(p.options.quiet);
  EXPECT_TRUE(p.options.help);
}

TEST(Options, BoolSpellings) {
  for (std::string_view t : {"1", "true", "TRUE", "yes", "Yes", "on", "ON"}) {
    const Parsed p = parse("quiet=" + std::string(t));
    EXPECT_TRUE(p.options.quiet) << t;
    EXPECT_TRUE(p.warnings.empty()) << t;
  }
  for (std::string_view t : {"0", "false", "False", "no", "NO", "off", "Off"}) {
    const Parsed p = parse("enabled=" + std::string(t));
    EXPECT_FALSE(p.options.enabled) << t;
    EXPECT_TRUE(p.warnings.empty()) << t;
  }
}

TEST(Options, IntRangeEdges) {
  EXPECT_EQ(parse("stack_depth=1").options.stack_depth, 1);
  EXPECT_EQ(parse("stack_depth=128").options.stack_depth, 128);
  EXPECT_EQ(parse("stack_depth=+7").options.stack_depth, 7);
  EXPECT_EQ(parse("verbosity=0").options.verbosity, 0);
  EXPECT_EQ(parse("verbosity=2").options.verbosity, 2);
}

TEST(Options, WhitespaceAroundKeysAndValuesIsTrimmed) {
  const Parsed p = parse("  stack_depth = 16 :\tverbosity\t=\t0\t: report_dir =  /x  ");
  EXPECT_TRUE(p.warnings.empty());
  EXPECT_EQ(p.options.stack_depth, 16);
  EXPECT_EQ(p.options.verbosity, 0);
  EXPECT_EQ(p.options.report_dir, "/x");
}

TEST(Options, QuotedValuesMayContainColons) {
  Parsed p = parse(R"(report_dir="/tmp/a:b":verbosity=2)");
  EXPECT_TRUE(p.warnings.empty());
  EXPECT_EQ(p.options.report_dir, "/tmp/a:b");
  EXPECT_EQ(p.options.verbosity, 2);

  p = parse("report_dir='/tmp/c:d' : stack_depth='8'");
  EXPECT_TRUE(p.warnings.empty());
  EXPECT_EQ(p.options.report_dir, "/tmp/c:d");
  EXPECT_EQ(p.options.stack_depth, 8);

  // Quotes keep inner whitespace and the other quote character.
  p = parse(R"(report_dir=" /it's here ")");
  EXPECT_EQ(p.options.report_dir, " /it's here ");
  p = parse(R"(report_dir="")");
  EXPECT_TRUE(p.warnings.empty());
  EXPECT_EQ(p.options.report_dir, "");
}

TEST(Options, QuoteInsideAValueIsLiteral) {
  const Parsed p = parse("report_dir=/tmp/it's:verbosity=2");
  EXPECT_TRUE(p.warnings.empty());
  EXPECT_EQ(p.options.report_dir, "/tmp/it's");
  EXPECT_EQ(p.options.verbosity, 2);
}

TEST(Options, ValueMayContainEquals) {
  EXPECT_EQ(parse("report_dir=/a=b").options.report_dir, "/a=b");
}

TEST(Options, UnterminatedQuoteWarnsAndParsingResumes) {
  const Parsed p = parse(R"(report_dir="/tmp/x:verbosity=2)");
  ASSERT_EQ(p.warnings.size(), 1u);
  EXPECT_EQ(p.warnings[0], R"(connleak: ignoring option 'report_dir="/tmp/x': unterminated quote)");
  EXPECT_EQ(p.options.report_dir, "");
  EXPECT_EQ(p.options.verbosity, 2);
}

TEST(Options, TextAfterClosingQuoteWarns) {
  const Parsed p = parse(R"(report_dir="/a"b:quiet=1)");
  ASSERT_EQ(p.warnings.size(), 1u);
  EXPECT_NE(p.warnings[0].find("'report_dir=\"/a\"b'"), std::string::npos) << p.warnings[0];
  EXPECT_EQ(p.options.report_dir, "");
  EXPECT_TRUE(p.options.quiet);
}

TEST(Options, LaterDuplicatesOverrideEarlierOnes) {
  const Parsed p = parse("stack_depth=10:report_dir=/a:stack_depth=20:report_dir=/b");
  EXPECT_TRUE(p.warnings.empty());
  EXPECT_EQ(p.options.stack_depth, 20);
  EXPECT_EQ(p.options.report_dir, "/b");
}

TEST(Options, BadLaterDuplicateKeepsTheEarlierValidValue) {
  const Parsed p = parse("stack_depth=64:stack_depth=abc");
  ASSERT_EQ(p.warnings.size(), 1u);
  EXPECT_EQ(p.warnings[0],
            "connleak: ignoring option 'stack_depth=abc': expected an integer from 1 to 128; "
            "keeping 64");
  EXPECT_EQ(p.options.stack_depth, 64);
}

struct BadValue {
  const char* text;
  const char* key;
  const char* expected_warning;
};

class OptionsBadValue : public ::testing::TestWithParam<BadValue> {};

TEST_P(OptionsBadValue, KeepsDefaultWithExactlyOneWarningNamingTheKey) {
  const BadValue& c = GetParam();
  const Parsed p = parse(c.text);
  expect_defaults(p.options);
  ASSERT_EQ(p.warnings.size(), 1u) << c.text;
  EXPECT_NE(p.warnings[0].find(std::string("'") + c.key), std::string::npos) << p.warnings[0];
  if (c.expected_warning != nullptr) {
    EXPECT_EQ(p.warnings[0], c.expected_warning);
  }
}

const BadValue kBadValues[] = {
    {"stack_depth=abc", "stack_depth",
     "connleak: ignoring option 'stack_depth=abc': expected an integer from 1 to 128; keeping 32"},
    {"stack_depth=0", "stack_depth",
     "connleak: ignoring option 'stack_depth=0': expected an integer from 1 to 128; keeping 32"},
    {"stack_depth=129", "stack_depth", nullptr},
    {"stack_depth=-1", "stack_depth", nullptr},
    {"stack_depth=", "stack_depth", nullptr},
    {"stack_depth=3.5", "stack_depth", nullptr},
    {"stack_depth=0x10", "stack_depth", nullptr},
    {"stack_depth=99999999999999999999999", "stack_depth", nullptr},
    {"stack_depth=12abc", "stack_depth", nullptr},
    {"verbosity=3", "verbosity",
     "connleak: ignoring option 'verbosity=3': expected an integer from 0 to 2; keeping 0"},
    {"enabled=maybe", "enabled",
     "connleak: ignoring option 'enabled=maybe': expected 1/0, true/false, yes/no or on/off; "
     "keeping true"},
    {"enabled=", "enabled", nullptr},
    {"quiet=2", "quiet", nullptr},
    {"help=y", "help", nullptr},
};

INSTANTIATE_TEST_SUITE_P(Cases, OptionsBadValue, ::testing::ValuesIn(kBadValues));

TEST(Options, UnknownKeyWarnsOnceAndTheRestStillApplies) {
  const Parsed p = parse("foo=1:verbosity=2");
  ASSERT_EQ(p.warnings.size(), 1u);
  EXPECT_EQ(p.warnings[0],
            "connleak: ignoring unknown option 'foo' (run with CONNLEAK_OPTIONS=help=1 for the "
            "list)");
  EXPECT_EQ(p.options.verbosity, 2);
}

TEST(Options, KeysAreCaseSensitive) {
  const Parsed p = parse("Verbosity=2");
  ASSERT_EQ(p.warnings.size(), 1u);
  EXPECT_NE(p.warnings[0].find("unknown option 'Verbosity'"), std::string::npos);
  EXPECT_EQ(p.options.verbosity, 0);
}

TEST(Options, UnknownKeyWithUnterminatedQuoteIsReportedAsUnknown) {
  const Parsed p = parse("fooo='x");
  ASSERT_EQ(p.warnings.size(), 1u);
  EXPECT_NE(p.warnings[0].find("unknown option 'fooo'"), std::string::npos) << p.warnings[0];
}

TEST(Options, KeyWithoutEqualsWarns) {
  const Parsed p = parse("quiet:verbosity=0");
  ASSERT_EQ(p.warnings.size(), 1u);
  EXPECT_EQ(p.warnings[0], "connleak: ignoring option 'quiet': expected key=value");
  EXPECT_FALSE(p.options.quiet);
  EXPECT_EQ(p.options.verbosity, 0);
}

TEST(Options, MissingKeyWarns) {
  const Parsed p = parse("=5:quiet=1");
  ASSERT_EQ(p.warnings.size(), 1u);
  EXPECT_NE(p.warnings[0].find("'=5'"), std::string::npos) << p.warnings[0];
  EXPECT_TRUE(p.options.quiet);
}

TEST(Options, OneWarningPerProblem) {
  const Parsed p = parse("a=1:b:stack_depth=x:verbosity=9:quiet=1::");
  EXPECT_EQ(p.warnings.size(), 4u);
  EXPECT_TRUE(p.options.quiet);
}

TEST(Options, WarningsDoNotEchoControlCharacters) {
  const Parsed p = parse("fo\x1b[31mo=1");
  ASSERT_EQ(p.warnings.size(), 1u);
  EXPECT_EQ(p.warnings[0].find('\x1b'), std::string::npos);
}

TEST(Options, ParseBoolAndIntHelpers) {
  bool b = false;
  EXPECT_TRUE(parse_bool(" On ", &b));
  EXPECT_TRUE(b);
  EXPECT_FALSE(parse_bool("nope", &b));
  EXPECT_TRUE(b);  // untouched on failure
  std::int64_t i = 5;
  EXPECT_TRUE(parse_int("-3", -5, 5, &i));
  EXPECT_EQ(i, -3);
  EXPECT_FALSE(parse_int("6", -5, 5, &i));
  EXPECT_FALSE(parse_int("+", -5, 5, &i));
  EXPECT_FALSE(parse_int("", -5, 5, &i));
  EXPECT_EQ(i, -3);
}

struct DurationCase {
  const char* text;
  double seconds;
};

class DurationAccepted : public ::testing::TestWithParam<DurationCase> {};

TEST_P(DurationAccepted, Parses) {
  Duration d{-1};
  ASSERT_TRUE(parse_duration(GetParam().text, &d)) << GetParam().text;
  EXPECT_DOUBLE_EQ(d.seconds, GetParam().seconds) << GetParam().text;
}

const DurationCase kGoodDurations[] = {
    {"30", 30},     {"30s", 30}, {"1.5s", 1.5},       {"250ms", 0.25}, {"2m", 120},
    {"1h", 3600},   {"0", 0},    {"0s", 0},           {"0ms", 0},      {"0.5", 0.5},
    {".5s", 0.5},   {"5.", 5},   {" 10s ", 10},       {"10 s", 10},    {"1.25h", 4500},
    {"100MS", 0.1}, {"3S", 3},   {"1000000000", 1e9},
};

INSTANTIATE_TEST_SUITE_P(Cases, DurationAccepted, ::testing::ValuesIn(kGoodDurations));

class DurationRejected : public ::testing::TestWithParam<const char*> {};

TEST_P(DurationRejected, LeavesOutputUntouched) {
  Duration d{42};
  EXPECT_FALSE(parse_duration(GetParam(), &d)) << GetParam();
  EXPECT_EQ(d.seconds, 42);
}

INSTANTIATE_TEST_SUITE_P(Cases, DurationRejected,
                         ::testing::Values("", " ", "s", "ms", "-1", "-1s", "+1s", "abc", "1x",
                                           "1.2.3s", "1e3", "1e3s", "inf", "nan", "1sec", "1 ms x",
                                           "10d", "1000000001", "99999999999999999999h", ".",
                                           "0x10", "1,5s"));

TEST(Duration, Format) {
  EXPECT_EQ(format_duration({0}), "0");
  EXPECT_EQ(format_duration({30}), "30s");
  EXPECT_EQ(format_duration({1.5}), "1.5s");
  EXPECT_EQ(format_duration({0.25}), "250ms");
  EXPECT_EQ(format_duration({0.0015}), "1.5ms");
  EXPECT_EQ(format_duration({120}), "2m");
  EXPECT_EQ(format_duration({90}), "90s");
  EXPECT_EQ(format_duration({3600}), "1h");
  EXPECT_EQ(format_duration({5400}), "90m");
  EXPECT_EQ(format_duration({-5}), "-5s");
}

TEST(Duration, FormatRoundTrips) {
  for (double s : {0.0, 0.001, 0.25, 0.999, 1.0, 1.5, 2.75, 59.0, 61.0, 90.5, 3600.0, 86400.0,
                   123456.789, 1e9}) {
    Duration back{-1};
    const std::string text = format_duration({s});
    ASSERT_TRUE(parse_duration(text, &back)) << text;
    EXPECT_NEAR(back.seconds, s, 1e-9 * (s + 1)) << text;
  }
}

TEST(Options, HelpListsEveryOptionOnItsOwnLineWithCurrentValue) {
  Options current;
  current.stack_depth = 77;
  current.report_dir = "/tmp/r";
  current.quiet = true;
  const std::string help = options_help(current);
  const std::vector<std::string> lines = lines_of(help);
  const std::vector<std::string> names = all_option_names();
  ASSERT_GE(names.size(), 10u);  // every option of options.inc, counted by its own expansion
  ASSERT_EQ(lines.size(), names.size() + 1);  // a heading, then one line per option
  for (std::size_t i = 0; i < names.size(); ++i) {
    const std::string& line = lines[i + 1];
    EXPECT_EQ(line.rfind("  " + names[i] + " ", 0), 0u) << line;
  }
  EXPECT_NE(lines[3].find("77"), std::string::npos) << lines[3];
  EXPECT_NE(lines[3].find("int 1..128"), std::string::npos) << lines[3];
  EXPECT_NE(lines[3].find("native frames kept per acquisition stack"), std::string::npos);
  EXPECT_NE(lines[2].find("\"/tmp/r\""), std::string::npos) << lines[2];
  EXPECT_NE(lines[5].find("true"), std::string::npos) << lines[5];
  EXPECT_EQ(help.back(), '\n');
}

// Found by tests/fuzz/fuzz_options.cpp (corpus/options/help-control-characters): a
// string value with a control character went raw into help=1's output.
TEST(Options, HelpSpellsControlCharactersInValues) {
  const Options o = parse_options("report_dir=/tmp/\x1b]0;owned\x07\x01x", nullptr);
  const std::string help = options_help(o);
  for (const char c : help) EXPECT_TRUE(c == '\n' || static_cast<unsigned char>(c) >= 0x20) << help;
  EXPECT_NE(help.find("\"/tmp/\\x1b]0;owned\\x07\\x01x\""), std::string::npos) << help;
}

TEST(Options, MarkdownTableHasOneRowPerOption) {
  const std::vector<std::string> lines = lines_of(options_markdown_table());
  const std::vector<std::string> names = all_option_names();
  ASSERT_EQ(lines.size(), names.size() + 2);
  EXPECT_EQ(lines[0], "| Option | Type | Default | Description |");
  EXPECT_EQ(lines[1], "|---|---|---|---|");
  for (std::size_t i = 0; i < names.size(); ++i) {
    EXPECT_EQ(lines[i + 2].rfind("| `" + names[i] + "` |", 0), 0u) << lines[i + 2];
  }
  EXPECT_EQ(lines[2],
            "| `enabled` | bool | `true` | track connections at all; 0 makes every hook a plain "
            "pass-through |");
  EXPECT_EQ(lines[4],
            "| `stack_depth` | int 1..128 | `32` | native frames kept per acquisition "
            "stack |");
  EXPECT_NE(lines[3].find("| string | `\"\"` |"), std::string::npos) << lines[3];
  // Escaped so that GitHub does not swallow "<pid>" as an HTML tag.
  EXPECT_NE(lines[3].find("connleak.\\<pid\\>.json"), std::string::npos) << lines[3];
}

}  // namespace
}  // namespace connleak

// The README's options table is generated; this keeps it from drifting.
#include <cstdlib>
#include <fstream>
#include <sstream>
TEST(OptionsReadme, TableMatchesTheGeneratedOne) {
  std::ifstream in(std::string(CONNLEAK_SOURCE_DIR) + "/README.md");
  std::stringstream ss;
  ss << in.rdbuf();
  std::string readme = ss.str();
  auto begin = readme.find("<!-- options:begin");
  auto end = readme.find("<!-- options:end -->");
  ASSERT_NE(begin, std::string::npos);
  ASSERT_NE(end, std::string::npos);
  begin = readme.find('\n', begin) + 1;
  if (std::getenv("CONNLEAK_UPDATE_GOLDEN")) {
    readme.replace(begin, end - begin, connleak::options_markdown_table());
    std::ofstream(std::string(CONNLEAK_SOURCE_DIR) + "/README.md") << readme;
    return;
  }
  EXPECT_EQ(readme.substr(begin, end - begin), connleak::options_markdown_table())
      << "regenerate the README table from collector/policy/options.inc";
}
