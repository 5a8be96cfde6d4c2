#pragma once
/* Number of malloc/calloc/realloc calls made by the calling thread so far
 * (alloc_count.c replaces the allocator's entry points in the executable). */
#ifdef __cplusplus
extern "C" {
#endif
unsigned long bench_alloc_count(void);
#ifdef __cplusplus
}
#endif
