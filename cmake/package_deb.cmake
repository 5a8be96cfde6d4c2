# `cpack -G DEB` (from the build directory): connleak_<version>_amd64.deb,
# installed under /usr with the same layout as `cmake --install` into any
# prefix: bin/connleak, lib/libconnleak.so (found by the CLI as
# ../lib/libconnleak.so), include/connleak/*.h, share/connleak/python (what
# `connleak run` puts on PYTHONPATH) and, for Debian's own python3,
# lib/python3/dist-packages/connleak + its dist-info (the pytest11 entry point).
set(CPACK_PACKAGE_NAME connleak)
set(CPACK_PACKAGE_VENDOR "connleak")
set(CPACK_PACKAGE_CONTACT "connleak maintainers <connleak@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY
    "runtime leak detector for database connections (LD_PRELOAD shim, CLI, pytest plugin)")
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)  # connleak_<version>_<arch>.deb
set(CPACK_DEBIAN_PACKAGE_SECTION devel)
set(CPACK_DEBIAN_PACKAGE_HOMEPAGE "https://github.com/connleak/connleak")
# The shared libraries the shim and the CLI link (libc6, libstdc++6, libdw1,
# libunwind8...), as dpkg-shlibdeps derives them from the ELF files.
find_program(CONNLEAK_DPKG_SHLIBDEPS dpkg-shlibdeps)
if(CONNLEAK_DPKG_SHLIBDEPS)
  set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
endif()
# The client libraries the shim hooks are the program's own (loaded by it, not
# linked by the shim), so no shlibdeps: declared for the drivers a user tracks
# and the Python side. Recommends, not Depends: a MariaDB-only host needs no libpq.
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "libpq5, libmariadb3, python3")
set(CPACK_DEBIAN_PACKAGE_SUGGESTS "python3-pytest, python3-pytest-xdist")
# cpack (and `make install`) package what was built instead of first building
# `all` (tests and benchmarks included): `cmake --build build && cpack` is the
# order, and the package test runs cpack without rebuilding the tree.
set(CMAKE_SKIP_INSTALL_ALL_DEPENDENCY ON)
include(CPack)
