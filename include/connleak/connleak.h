/* connleak public API: talk to libconnleak.so from the program it watches.
 *
 * Every function is declared weak: a program built against this header links
 * and runs without the shim, where the symbols are NULL. Call through the
 * CONNLEAK_* macros (or test the pointer yourself), which do nothing then:
 *
 *     #include <connleak/connleak.h>
 *     CONNLEAK_DUMP();                    // write a dump now, if the shim is loaded
 *     long open = CONNLEAK_CHECK();       // -1 without the shim
 */
#ifndef CONNLEAK_CONNLEAK_H
#define CONNLEAK_CONNLEAK_H

#ifdef __cplusplus
extern "C" {
#endif

/* Writes a dump of every open connection (trigger "request") to stderr and,
 * with report_dir set, to <report_dir>/connleak.<pid>.<n>.json.
 * Returns 0 on success, -1 when tracking is disabled. */
int connleak_dump(void) __attribute__((weak));

/* Number of connections currently open in this process, ignored ones excluded
 * (like __lsan_do_recoverable_leak_check: a test can assert it is back to zero). */
long connleak_check(void) __attribute__((weak));

/* An intentionally long-lived connection (a PGconn* or MYSQL*): no threshold
 * alerts, and not a leak at exit. Returns 0, or -1 if the handle is not open. */
int connleak_ignore(const void* handle) __attribute__((weak));

#ifdef __cplusplus
}
#endif

#define CONNLEAK_DUMP() (connleak_dump ? connleak_dump() : -1)
#define CONNLEAK_CHECK() (connleak_check ? connleak_check() : -1L)
#define CONNLEAK_IGNORE(handle) (connleak_ignore ? connleak_ignore(handle) : -1)

#endif /* CONNLEAK_CONNLEAK_H */
