// Symbolizer: one libbacktrace state per module, made when a frame is there.
#include "collector/report/symbolize.h"

#include <gtest/gtest.h>

#include <cstdint>

#include "collector/report/module_backtrace.h"

extern "C" std::uintptr_t nodebug_hidden_function_address();

namespace connleak {
namespace {

__attribute__((noinline)) void frame_with_debug_info() {
  asm volatile("");
}

__attribute__((noinline)) void another_frame_with_debug_info() {
  asm volatile("");
}

std::uintptr_t return_address_in(std::uintptr_t function) {
  return function + 1;  // the Symbolizer looks one byte before: the function's entry
}

TEST(Symbolizer, NamesAHiddenFunctionInAModuleWithoutDebugInfo) {
  Symbolizer s;
  // The library is built with -g0: only its symbol table names the function,
  // and dladdr (dynamic symbols) cannot, since it is hidden.
  Frame f = s.resolve(return_address_in(nodebug_hidden_function_address()));
  ASSERT_TRUE(f.function);
  EXPECT_EQ(*f.function, "nodebug_hidden_function");
  ASSERT_TRUE(f.module);
  EXPECT_NE(f.module->find("libnodebug_frames"), std::string::npos) << *f.module;
  EXPECT_FALSE(f.file) << *f.file;
  EXPECT_FALSE(f.line);
  // Canary: in the same process, a frame of the program (built with -g)
  // still gets its file and line.
  Frame g = s.resolve(return_address_in(reinterpret_cast<std::uintptr_t>(&frame_with_debug_info)));
  ASSERT_TRUE(g.function);
  EXPECT_NE(g.function->find("frame_with_debug_info"), std::string::npos) << *g.function;
  ASSERT_TRUE(g.file);
  EXPECT_NE(g.file->find("symbolize_test.cpp"), std::string::npos) << *g.file;
  EXPECT_TRUE(g.line);
}

TEST(Symbolizer, ReadsAModuleOnlyWhenAFrameIsThereAndOnlyOnce) {
  Symbolizer s;
  std::size_t before = module_backtrace_modules_read();
  s.resolve(return_address_in(reinterpret_cast<std::uintptr_t>(&frame_with_debug_info)));
  std::size_t after_program = module_backtrace_modules_read();
  // Another frame in the same module reuses its state.
  s.resolve(return_address_in(reinterpret_cast<std::uintptr_t>(&another_frame_with_debug_info)));
  EXPECT_EQ(module_backtrace_modules_read(), after_program);
  // A frame in the library reads that library, and nothing else.
  s.resolve(return_address_in(nodebug_hidden_function_address()));
  std::size_t after_library = module_backtrace_modules_read();
  EXPECT_LE(after_program, before + 1);
  EXPECT_LE(after_library, after_program + 1);
  // A fresh process (one test per ctest run) had read neither before.
  if (before == 0) {
    EXPECT_EQ(after_program, 1u);
    EXPECT_EQ(after_library, 2u);
  }
}

}  // namespace
}  // namespace connleak
