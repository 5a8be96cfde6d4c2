# Perl frames (included from shim/CMakeLists.txt). The reader is compiled
# against the installed perl's CORE headers (Debian: libperl5.X, a dependency
# of perl) and only when they are found; without them the shim builds with no
# Perl frames. libperl is never linked: the running one is found with dlsym.
target_sources(connleak PRIVATE perl/perl_stack.cpp)
find_program(CONNLEAK_PERL perl)
set(CONNLEAK_PERL_CORE "")
if(CONNLEAK_PERL)
  execute_process(COMMAND ${CONNLEAK_PERL} -MConfig -e [[print qq($Config{archlibexp}/CORE)]]
                  OUTPUT_VARIABLE CONNLEAK_PERL_CORE RESULT_VARIABLE _perl_rc ERROR_QUIET)
  if(NOT _perl_rc EQUAL 0 OR NOT EXISTS "${CONNLEAK_PERL_CORE}/perl.h")
    set(CONNLEAK_PERL_CORE "")
  endif()
endif()
if(CONNLEAK_PERL_CORE)
  # The -D flags perl was built with (e.g. _FILE_OFFSET_BITS, _REENTRANT): the
  # headers' layouts depend on them.
  execute_process(COMMAND ${CONNLEAK_PERL} -MConfig -e [[print $Config{ccflags}]]
                  OUTPUT_VARIABLE _perl_ccflags)
  separate_arguments(_perl_ccflags UNIX_COMMAND "${_perl_ccflags}")
  set(_perl_defines "")
  foreach(_flag IN LISTS _perl_ccflags)
    if(_flag MATCHES "^-D")
      list(APPEND _perl_defines "${_flag}")
    endif()
  endforeach()
  # perl.h's own #ifdef list for PL_bincompat_options, copied verbatim so that
  # the string the reader compares with the running perl's is the one these
  # headers and flags describe.
  file(READ "${CONNLEAK_PERL_CORE}/perl.h" _perl_h)
  string(FIND "${_perl_h}" "EXTCONST char PL_bincompat_options[] =" _begin)
  string(FIND "${_perl_h}" "EXTCONST char PL_bincompat_options[];" _end)
  if(_begin EQUAL -1 OR _end EQUAL -1)
    message(WARNING "perl.h has no PL_bincompat_options list: building without Perl frames")
    set(CONNLEAK_PERL_CORE "")
  else()
    string(LENGTH "EXTCONST char PL_bincompat_options[] =" _skip)
    math(EXPR _begin "${_begin} + ${_skip}")
    math(EXPR _length "${_end} - ${_begin}")
    string(SUBSTRING "${_perl_h}" ${_begin} ${_length} _list)
    # Up to the list's closing `"";` (what follows is perl.h's #else).
    string(FIND "${_list}" "\"\";" _close)
    string(SUBSTRING "${_list}" 0 ${_close} _list)
    file(CONFIGURE OUTPUT ${CMAKE_CURRENT_BINARY_DIR}/perl/perl_bincompat.inc
         CONTENT "${_list}\"\"\n" @ONLY)
  endif()
endif()
if(CONNLEAK_PERL_CORE)
  message(STATUS "Perl frames: reader built against ${CONNLEAK_PERL_CORE}")
  target_sources(connleak PRIVATE perl/perl_reader.cpp)
  set_source_files_properties(perl/perl_reader.cpp perl/perl_stack.cpp PROPERTIES
    COMPILE_DEFINITIONS CONNLEAK_PERL_READER=1)
  # Perl's headers for this one file only (CORE has config.h, util.h,
  # thread.h ... that must not shadow anything else); -isystem: they are not
  # -Wpedantic clean.
  set_source_files_properties(perl/perl_reader.cpp PROPERTIES
    COMPILE_OPTIONS "${_perl_defines};-isystem;${CONNLEAK_PERL_CORE};-I${CMAKE_CURRENT_BINARY_DIR}/perl")
else()
  message(STATUS "Perl frames: no perl CORE headers found, built without them")
endif()
