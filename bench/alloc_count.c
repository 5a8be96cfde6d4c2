/* Counting malloc for the micro-benchmarks: defined in the executable (which
 * exports it), so every malloc in the process, the shim's included, lands
 * here first and then in glibc's allocator. The counter is thread-local: one
 * add per call, no atomic, so timings are barely touched. */
#include "alloc_count.h"

#include <stddef.h>

extern void* __libc_malloc(size_t size);
extern void* __libc_calloc(size_t n, size_t size);
extern void* __libc_realloc(void* ptr, size_t size);
extern void __libc_free(void* ptr);

static __thread unsigned long t_allocs;

unsigned long bench_alloc_count(void) {
  return t_allocs;
}

void* malloc(size_t size) {
  ++t_allocs;
  return __libc_malloc(size);
}

void* calloc(size_t n, size_t size) {
  ++t_allocs;
  return __libc_calloc(n, size);
}

void* realloc(void* ptr, size_t size) {
  ++t_allocs;
  return __libc_realloc(ptr, size);
}

void free(void* ptr) {
  __libc_free(ptr);
}
