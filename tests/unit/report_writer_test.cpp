#include "collector/report_writer.h"

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
  struct stat st{};
  ASSERT_EQ(stat((dir + "/r.json").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  std::ifstream in(dir + "/r.json");
  std::stringstream ss;
  ss << in.rdbuf();
  EXPECT_EQ(ss.str(), "{}\n");
  // Rewriting replaces the file.
  ASSERT_TRUE(write_file_atomically(dir, "r.json", "[]\n", &error)) << error;
  std::ifstream again(dir + "/r.json");
  std::stringstream ss2;
  ss2 << again.rdbuf();
  EXPECT_EQ(ss2.str(), "[]\n");
}

TEST(ReportWriter, NeverWritesThroughASymlink) {
  std::string dir = temp_dir();
  std::string victim = dir + "/victim";
  std::ofstream(victim) << "precious";
  ASSERT_EQ(symlink(victim.c_str(), (dir + "/r.json").c_str()), 0);
  std::string error;
  ASSERT_TRUE(write_file_atomically(dir, "r.json", "{}\n", &error)) << error;
  std::ifstream in(victim);
  std::stringstream ss;
  ss << in.rdbuf();
  EXPECT_EQ(ss.str(), "precious");  // the link was replaced, its target untouched
  struct stat st{};
  ASSERT_EQ(lstat((dir + "/r.json").c_str(), &st), 0);
  EXPECT_TRUE(S_ISREG(st.st_mode));
}

TEST(ReportWriter, CreatesMissingDirectoriesPrivately) {
  std::string dir = temp_dir() + "/a/b/c";
  std::string error;
  ASSERT_TRUE(ensure_directory(dir, &error)) << error;
  struct stat st{};
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
