// Suppressions parser on hostile files. Found by tests/fuzz/fuzz_suppressions.cpp;
// the inputs are in tests/fuzz/corpus/suppressions (replayed by fuzz_replay.suppressions).
#include <gtest/gtest.h>

#include <string>

#include "collector/policy/suppressions.h"

namespace connleak {
namespace {

bool has_control(const std::string& s) {
  for (const char c : s)
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) return true;
  return false;
}

// corpus/suppressions/control-character-in-pattern: "leak:**\x04" was accepted,
// and the "Suppressions used:" table then printed the raw byte.
TEST(SuppressionsParse, ControlCharacterInPatternIsOneClearError) {
  std::string error;
  EXPECT_FALSE(Suppressions::parse("leak:ok\nleak:**\x04\n", "a.supp", &error));
  EXPECT_EQ(error, "a.supp:2: control character in pattern '**\\x04'");
  EXPECT_FALSE(Suppressions::parse("leak:open\x1b]0;title\x07\n", "b.supp", &error));
  EXPECT_EQ(error, "b.supp:1: control character in pattern 'open\\x1b]0;title\\x07'");
  // A tab around the pattern is blank space, as before.
  std::optional<Suppressions> ok = Suppressions::parse("leak:\tfoo\t\n", "c.supp", &error);
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->entries().at(0).pattern, "foo");
}

// The errors quoted the offending line as is: a binary file (or an escape
// sequence in one) reached the terminal, over any number of bytes.
TEST(SuppressionsParse, ErrorsQuoteThePrintablePartOnly) {
  std::string error;
  EXPECT_FALSE(Suppressions::parse("\x1b[2J\x01\x02 binary", "bin.supp", &error));
  EXPECT_EQ(error, "bin.supp:1: expected 'leak:<pattern>', got '\\x1b[2J\\x01\\x02 binary'");
  EXPECT_FALSE(
      Suppressions::parse("ra\x1b"
                          "ce:x\n",
                          "t.supp", &error));
  EXPECT_EQ(error, "t.supp:1: unknown suppression type 'ra\\x1bce' (only 'leak:' is supported)");
  EXPECT_FALSE(Suppressions::parse(std::string(5000, 'x'), "long.supp", &error));
  EXPECT_FALSE(has_control(error));
  EXPECT_LT(error.size(), 200u) << error;
}

}  // namespace
}  // namespace connleak
