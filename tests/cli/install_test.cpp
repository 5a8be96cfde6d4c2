// `cmake --install` into a temporary prefix: the program, the preload library
// and the header land there, and the installed `connleak run` finds the
// installed library by itself and catches a real leak with it.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <sstream>

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

  // The Python package and its dist-info also where Debian's python3 looks
  // (lib/python3/dist-packages under the prefix), without sitecustomize.py.
  const std::string dist = prefix.file("lib/python3/dist-packages");
  for (const std::string& f :
       {dist + "/connleak/pytest_plugin.py", dist + "/connleak/_bootstrap.py",
        dist + "/connleak-" CONNLEAK_PROJECT_VERSION ".dist-info/entry_points.txt",
        dist + "/connleak-" CONNLEAK_PROJECT_VERSION ".dist-info/METADATA"})
    EXPECT_TRUE(std::filesystem::exists(f)) << f;
  EXPECT_FALSE(std::filesystem::exists(dist + "/sitecustomize.py"));

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

namespace {

// dpkg-deb on PATH, or "" when it is genuinely not installed.
std::string find_dpkg_deb() {
  const char* path = std::getenv("PATH");
  std::stringstream dirs(path ? path : "/usr/bin:/bin");
  for (std::string dir; std::getline(dirs, dir, ':');)
    if (!dir.empty() && access((dir + "/dpkg-deb").c_str(), X_OK) == 0) return dir + "/dpkg-deb";
  return "";
}

}  // namespace

// Issue 17 point 5: `cpack -G DEB` builds connleak_<version>_amd64.deb; its
// content, unpacked into an empty root (no container, no system change),
// runs `connleak run pytest` on the plugin's mini-suite: the installed CLI
// finds the installed shim and Python package by itself, and the leak names
// the test that made it.
TEST(Package, DebUnpackedIntoACleanRootRunsThePytestSuite) {
  const std::string dpkg_deb = find_dpkg_deb();
  if (dpkg_deb.empty())
    GTEST_SKIP() << "dpkg-deb is not installed (Debian: dpkg), no .deb to check";
  TempDir out;
  Result pack = run({CONNLEAK_CPACK_COMMAND, "-G", "DEB", "--config",
                     std::string(CONNLEAK_BUILD_DIR) + "/CPackConfig.cmake", "-B", out.path()});
  ASSERT_EQ(pack.exit_code, 0) << describe(pack);
  const std::string deb = out.file("connleak_" CONNLEAK_PROJECT_VERSION "_amd64.deb");
  ASSERT_TRUE(std::filesystem::exists(deb)) << describe(pack);

  // What dpkg reads: the name, the architecture, and the shared libraries
  // the shim and the CLI link, derived by dpkg-shlibdeps.
  Result fields = run({dpkg_deb, "-f", deb, "Package", "Version", "Architecture", "Depends"});
  ASSERT_EQ(fields.exit_code, 0) << describe(fields);
  EXPECT_TRUE(contains(fields.out, "Package: connleak\n")) << fields.out;
  EXPECT_TRUE(contains(fields.out, "Version: " CONNLEAK_PROJECT_VERSION "\n")) << fields.out;
  EXPECT_TRUE(contains(fields.out, "Architecture: amd64\n")) << fields.out;
  for (const char* lib : {"libc6 (>=", "libstdc++6 (>=", "libdw1 (>="})
    EXPECT_TRUE(contains(fields.out, lib)) << lib << " missing from\n" << fields.out;

  Result listing = run({dpkg_deb, "-c", deb});
  ASSERT_EQ(listing.exit_code, 0) << describe(listing);
  const std::string dist = "./usr/lib/python3/dist-packages/";
  for (const std::string& f :
       {std::string("./usr/bin/connleak"), std::string("./usr/lib/libconnleak.so"),
        std::string("./usr/include/connleak/connleak.h"),
        std::string("./usr/share/connleak/python/sitecustomize.py"),
        dist + "connleak/pytest_plugin.py",
        dist + "connleak-" CONNLEAK_PROJECT_VERSION ".dist-info/entry_points.txt"})
    EXPECT_TRUE(contains(listing.out, " " + f + "\n")) << f << " missing from\n" << listing.out;

  TempDir root;
  Result unpack = run({dpkg_deb, "-x", deb, root.path()});
  ASSERT_EQ(unpack.exit_code, 0) << describe(unpack);
  const std::string usr = root.file("usr");
  const std::string cli = usr + "/bin/connleak";
  const std::vector<std::pair<std::string, std::string>> env = {
      {"PATH", usr + "/bin:" + std::string(std::getenv("PATH") ? std::getenv("PATH") : "/usr/bin")},
      {"PYTHONDONTWRITEBYTECODE", "1"}};

  // Debian's python3 sees the plugin's entry point in the root's dist-packages.
  Result entry = run({"/usr/bin/python3", "-c",
                      "import importlib.metadata as m, connleak.pytest_plugin as p\n"
                      "print([e.value for e in m.entry_points(group='pytest11') "
                      "if e.name == 'connleak.pytest_plugin'], p.__file__)"},
                     {.env = {{"PYTHONPATH", usr + "/lib/python3/dist-packages"}}});
  EXPECT_EQ(entry.out, "['connleak.pytest_plugin'] " + usr +
                           "/lib/python3/dist-packages/connleak/pytest_plugin.py\n")
      << describe(entry);

  // The root's `connleak` (its usr/bin first on PATH too) preloads the root's
  // shim and Python package.
  Result where = run({cli, "run", "--", "/bin/sh", "-c", "echo \"$LD_PRELOAD $PYTHONPATH\""},
                     {.env = env, .unset = {"PYTHONPATH"}});
  EXPECT_EQ(where.out, usr + "/lib/libconnleak.so " + usr + "/share/connleak/python\n")
      << describe(where);

  const std::string suite = source_dir() + "/tests/e2e/pytest_suite";
  const std::string junit = out.file("junit.xml");
  Result r =
      run({cli, "run", "--", "/usr/bin/python3", "-m", "pytest", "-p", "no:cacheprovider",
           "--junitxml=" + junit, "-q", "--rootdir=" + suite,
           suite + "/test_sync.py::test_leaks_psycopg2", suite + "/test_sync.py::test_clean"},
          {.env = env, .unset = {"PYTHONPATH"}, .pg = true});
  EXPECT_EQ(r.exit_code, 1) << describe(r);  // pytest's status: the leaking test failed
  EXPECT_TRUE(contains(r.out, "test_sync.py::test_leaks_psycopg2: 1 connection(s) left open"))
      << describe(r);
  EXPECT_FALSE(contains(r.out, "test_sync.py::test_clean:")) << describe(r);
  EXPECT_TRUE(contains(read_file(junit),
                       "connleak: test_sync.py::test_leaks_psycopg2: 1 "
                       "connection(s) left open"))
      << read_file(junit);
  EXPECT_TRUE(contains(r.err, "test test_sync.py::test_leaks_psycopg2")) << describe(r);
  EXPECT_TRUE(contains(r.err, "test_leaks_psycopg2 " + suite + "/test_sync.py:")) << describe(r);
}
