#include "collector/report/report_writer.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

namespace connleak {
namespace {

std::string temp_dir() {
  char tmpl[] = "/tmp/connleak-unit-XXXXXX";
  return mkdtemp(tmpl);
}

TEST(ReportWriter, WritesAtomicallyWithPrivateMode) {
  std::string dir = temp_dir();
  std::string error;
  ASSERT_TRUE(write_file_atomically(dir, "r.json", "{}\n", &error)) << error;
  struct stat st {};
  ASSERT_EQ(stat((dir + "/r.json").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  std::ifstream in(dir + "/r.json");
  std::stringstream ss;
  ss << in.rdbuf();
  EXPECT_EQ(ss.str(), "{}\n");
  // A name already taken is another process's report (the same pid in another
  // pid namespace, or an earlier process): kept, ours gets the process tag.
  std::string written;
  ASSERT_TRUE(write_file_atomically(dir, "r.json", "[]\n", &error, &written)) << error;
  EXPECT_EQ(written, dir + "/" + tagged_name("r.json", process_tag()));
  std::ifstream first(dir + "/r.json"), second(written);
  std::stringstream ss1, ss2;
  ss1 << first.rdbuf();
  ss2 << second.rdbuf();
  EXPECT_EQ(ss1.str(), "{}\n");
  EXPECT_EQ(ss2.str(), "[]\n");
}

TEST(ReportWriter, ProcessTagIsPidNamespaceAndStartTime) {
  std::string tag = process_tag();
  struct stat ns {};
  ASSERT_EQ(stat("/proc/self/ns/pid", &ns), 0);
  EXPECT_EQ(tag.substr(0, tag.find('-')), std::to_string(ns.st_ino)) << tag;
  EXPECT_GT(std::stoull(tag.substr(tag.find('-') + 1)), 0u) << tag;
  EXPECT_EQ(tagged_name("connleak.7.json", "1-2"), "connleak.7.1-2.json");
  EXPECT_EQ(tagged_name("connleak.7.3.json", "1-2"), "connleak.7.3.1-2.json");
}

TEST(ReportWriter, UntrustedDirectoriesAreRefused) {
  std::string dir = temp_dir(), error;
  EXPECT_TRUE(trusted_directory(dir, &error)) << error;
  ASSERT_EQ(chmod(dir.c_str(), 0777), 0);
  EXPECT_FALSE(trusted_directory(dir, &error));
  EXPECT_EQ(error, dir + " is writable by other users and has no sticky bit");
  ASSERT_EQ(chmod(dir.c_str(), 01777), 0);  // like /tmp
  EXPECT_TRUE(trusted_directory(dir, &error)) << error;
  ASSERT_EQ(chmod(dir.c_str(), 0770), 0);
  EXPECT_FALSE(trusted_directory(dir, &error));
  ASSERT_EQ(chmod(dir.c_str(), 0700), 0);
  if (geteuid() == 0) {
    ASSERT_EQ(chown(dir.c_str(), 4242, 4242), 0);
    EXPECT_FALSE(trusted_directory(dir, &error));
    EXPECT_EQ(error, dir + " is owned by uid 4242, neither you nor root");
  }
}

TEST(ReportWriter, NeverWritesThroughASymlink) {
  std::string dir = temp_dir();
  std::string victim = dir + "/victim";
  std::ofstream(victim) << "precious";
  ASSERT_EQ(symlink(victim.c_str(), (dir + "/r.json").c_str()), 0);
  std::string error;
  std::string written;
  ASSERT_TRUE(write_file_atomically(dir, "r.json", "{}\n", &error, &written)) << error;
  std::ifstream in(victim);
  std::stringstream ss;
  ss << in.rdbuf();
  EXPECT_EQ(ss.str(), "precious");  // the link's target untouched
  struct stat st {};
  ASSERT_EQ(lstat(written.c_str(), &st), 0);
  EXPECT_TRUE(S_ISREG(st.st_mode));
  // A planted temp name is not written through either.
  std::string temp = dir + "/.s.json.tmp." + process_tag();
  ASSERT_EQ(symlink(victim.c_str(), temp.c_str()), 0);
  ASSERT_TRUE(write_file_atomically(dir, "s.json", "{}\n", &error)) << error;
  std::ifstream again(victim);
  std::stringstream ss2;
  ss2 << again.rdbuf();
  EXPECT_EQ(ss2.str(), "precious");
}

TEST(ReportWriter, CreatesMissingDirectoriesPrivately) {
  std::string dir = temp_dir() + "/a/b/c";
  std::string error;
  ASSERT_TRUE(ensure_directory(dir, &error)) << error;
  struct stat st {};
  ASSERT_EQ(stat(dir.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
}

TEST(ReportWriter, UnwritableDirectoryIsAnErrorNotACrash) {
  std::string error;
  EXPECT_FALSE(write_file_atomically("/proc/definitely/not/here", "r.json", "{}", &error));
  EXPECT_FALSE(error.empty());
  EXPECT_FALSE(ensure_directory("/proc/1/nope", &error));
}

}  // namespace
}  // namespace connleak
