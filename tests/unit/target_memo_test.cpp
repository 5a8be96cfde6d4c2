// The target memo (collector/policy/target_memo.h) must give exactly what
// format_target_without gives, for every password: a memo that served one
// connection's target to another with a different password could print the
// second one's password where the first one's target shows that field.
#include "collector/policy/target_memo.h"

#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "collector/core/string_table.h"
#include "collector/policy/redact.h"

namespace connleak {
namespace {

// Same host, port, dbname and user; only the password differs, and one of the
// passwords is also the host's text.
const char* target_for(const char* password) {
  return interned_target_without(
      password, {{"host", "Zq7sec.example"}, {"port", "5432"}, {"dbname", "app"}, {"user", "u"}});
}

TEST(TargetMemo, SamePartsDifferentPasswordsEachGetTheirOwnRedaction) {
  for (int round = 0; round < 3; ++round) {
    // The password is the host's text: the host is left out.
    EXPECT_STREQ(target_for("Zq7sec"), "port=5432 dbname=app user=u") << round;
    // Another password: the host is shown, not the first one's target.
    EXPECT_STREQ(target_for("other-pw"), "host=Zq7sec.example port=5432 dbname=app user=u")
        << round;
    // A password that is a piece of the dbname ("app" is 3 bytes: a piece).
    EXPECT_STREQ(target_for("app"), "host=Zq7sec.example port=5432 user=u") << round;
    EXPECT_STREQ(target_for(""), "host=Zq7sec.example port=5432 dbname=app user=u") << round;
  }
}

TEST(TargetMemo, RememberedTargetIsTheInternedOne) {
  const char* first = target_for("hunter2");
  EXPECT_EQ(target_for("hunter2"), first);  // a hit: the same interned pointer
  EXPECT_EQ(first, intern_string("host=Zq7sec.example port=5432 dbname=app user=u"));
}

TEST(TargetMemo, MatchesFormatTargetWithoutByteForByte) {
  const std::vector<std::string> secrets = {"", "s3cr3t", "xy", "db1", "u:pw@h", "p w'\\"};
  const std::vector<std::string> hosts = {"h", "s3cr3t.example", "my host", "mysql://root:pw@h",
                                          ""};
  const std::vector<std::string> dbs = {"db1", "postgresql://u:s3cr3t@h/db", "password=x", "d b"};
  // Several passes, more inputs than the memo has slots: hits, misses and
  // evictions all give format_target_without's result.
  for (int pass = 0; pass < 3; ++pass) {
    for (const std::string& s : secrets)
      for (const std::string& h : hosts)
        for (const std::string& d : dbs) {
          const std::string want = format_target_without(
              s, {{"host", h}, {"port", "5432"}, {"dbname", d}, {"user", "u"}});
          const char* got = interned_target_without(
              s, {{"host", h}, {"port", "5432"}, {"dbname", d}, {"user", "u"}});
          ASSERT_STREQ(got, want.c_str()) << "secret '" << s << "' host '" << h << "' db '" << d;
          // And twice in a row, the second from the memo.
          ASSERT_STREQ(interned_target_without(
                           s, {{"host", h}, {"port", "5432"}, {"dbname", d}, {"user", "u"}}),
                       want.c_str());
        }
  }
}

TEST(TargetMemo, FieldBoundariesArePartOfTheKey) {
  // Same bytes end to end, split differently between the fields.
  EXPECT_STREQ(interned_target_without("", {{"host", "ab"}, {"user", "c"}}), "host=ab user=c");
  EXPECT_STREQ(interned_target_without("", {{"host", "a"}, {"user", "bc"}}), "host=a user=bc");
  EXPECT_STREQ(interned_target_without("pw", {{"host", "h"}}), "host=h");
  EXPECT_STREQ(interned_target_without("", {{"host", "pwh"}}), "host=pwh");
  // The keys count too.
  EXPECT_STREQ(interned_target_without("", {{"host", "x"}}), "host=x");
  EXPECT_STREQ(interned_target_without("", {{"user", "x"}}), "user=x");
}

TEST(TargetMemo, LongInputsAreRedactedWithoutTheMemo) {
  const std::string long_secret(3000, 'k');
  const std::string long_host = "h" + long_secret + "h";
  EXPECT_STREQ(interned_target_without(long_secret, {{"host", long_host}, {"user", "u"}}),
               "user=u");
  EXPECT_STREQ(interned_target_without("other", {{"host", long_host}, {"user", "u"}}),
               ("host=" + long_host + " user=u").c_str());
}

TEST(TargetMemo, EachThreadGetsTheSameTargets) {
  std::vector<std::thread> threads;
  std::vector<int> wrong(4, 0);
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([t, &wrong] {
      for (int i = 0; i < 200; ++i) {
        const bool mine = (i + t) % 2 == 0;
        const char* got = target_for(mine ? "Zq7sec" : "other-pw");
        const char* want = mine ? "port=5432 dbname=app user=u"
                                : "host=Zq7sec.example port=5432 dbname=app user=u";
        if (std::strcmp(got, want) != 0) ++wrong[t];
      }
    });
  for (std::thread& th : threads) th.join();
  EXPECT_EQ(wrong, std::vector<int>(4, 0));
}

}  // namespace
}  // namespace connleak
