// `cmake --install` into a temporary prefix: the program, the preload library
// and the header land there, and the installed `connleak run` finds the
// installed library by itself and catches a real leak with it.
#include <gtest/gtest.h>

#include <filesystem>

#include "tests/cli/harness.h"

using namespace cli_test;

TEST(Install, PrefixIsSelfContained) {
  TempDir prefix;
  Result install =
      run({CONNLEAK_CMAKE_COMMAND, "--install", CONNLEAK_BUILD_DIR, "--prefix", prefix.path()});
  ASSERT_EQ(install.exit_code, 0) << describe(install);
  const std::string cli = prefix.file("bin/connleak");
  for (const std::string& f :
       {cli, prefix.file("lib/libconnleak.so"), prefix.file("include/connleak/connleak.h")})
    EXPECT_TRUE(std::filesystem::exists(f)) << f;

  Result env = run({cli, "run", "--", "/bin/sh", "-c", "echo \"$LD_PRELOAD\""});
  ASSERT_EQ(env.exit_code, 0) << describe(env);
  EXPECT_EQ(env.out, prefix.file("lib/libconnleak.so") + "\n");

  // Through a symlink elsewhere (as /usr/local/bin/connleak would be): the real path counts.
  TempDir links;
  std::filesystem::create_symlink(cli, links.file("connleak"));
  Result via_link =
      run({links.file("connleak"), "run", "--", "/bin/sh", "-c", "echo \"$LD_PRELOAD\""});
  EXPECT_EQ(via_link.out, prefix.file("lib/libconnleak.so") + "\n") << describe(via_link);

  // The Python pool hooks: installed, and put first on PYTHONPATH (the user's entries kept).
  const std::string hooks = prefix.file("share/connleak/python");
  for (const std::string& f : {hooks + "/sitecustomize.py", hooks + "/connleak/_bootstrap.py",
                               hooks + "/connleak/adapters/sqlalchemy.py"})
    EXPECT_TRUE(std::filesystem::exists(f)) << f;
  Result py = run({cli, "run", "--", "/bin/sh", "-c", "echo \"$PYTHONPATH\""},
                  {.env = {{"PYTHONPATH", "/opt/app:" + hooks}}});
  EXPECT_EQ(py.out, hooks + ":/opt/app\n") << describe(py);
  Result no_py =
      run({cli, "run", "--", "/bin/sh", "-c", "echo \"$PYTHONPATH\""}, {.unset = {"PYTHONPATH"}});
  EXPECT_EQ(no_py.out, hooks + "\n") << describe(no_py);

  // The pytest plugin: installed with a dist-info whose pytest11 entry point
  // Python finds on that PYTHONPATH, and turned on by `connleak run`.
  EXPECT_TRUE(std::filesystem::exists(hooks + "/connleak/pytest_plugin.py"));
  Result entry = run({cli, "run", "--", "/usr/bin/python3", "-c",
                      "import importlib.metadata as m, os\n"
                      "print([e.value for e in m.entry_points(group='pytest11') "
                      "if e.name == 'connleak.pytest_plugin'], os.environ['CONNLEAK_PYTEST'])"});
  EXPECT_EQ(entry.out, "['connleak.pytest_plugin'] fail\n") << describe(entry);
  Result never =
      run({cli, "run", "--fail-on", "never", "--", "/bin/sh", "-c", "echo \"$CONNLEAK_PYTEST\""});
  EXPECT_EQ(never.out, "report\n") << describe(never);

  Result leak = run({cli, "run", "--", bin("pq_scenarios"), "leak"}, {.pg = true});
  EXPECT_EQ(leak.exit_code, 23) << describe(leak);
  EXPECT_TRUE(contains(leak.err, "open_report_conn")) << leak.err;
}

TEST(Install, MissingLibraryIsOneClearLine) {
  TempDir prefix;
  std::filesystem::create_directories(prefix.file("bin"));
  std::filesystem::copy_file(cli_path(), prefix.file("bin/connleak"));
  Result r = run({prefix.file("bin/connleak"), "run", "--", "true"});
  EXPECT_EQ(r.exit_code, 2) << describe(r);
  EXPECT_EQ(r.err, "connleak: cannot find the preload library: " +
                       prefix.file("lib/libconnleak.so") + " is missing or unreadable\n");
}
