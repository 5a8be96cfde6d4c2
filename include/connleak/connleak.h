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

/* Pool checkouts. Called by connleak's Python package (python/connleak) from
 * pool events and method wrappers, through ctypes; a pool written in C or C++
 * can call them too. Python is never run from inside these calls: they only
 * record. Every string is copied (and redacted) before the call returns.
 *
 * Connection keys say which tracked connection record a pooled connection is:
 *   CONNLEAK_KEY_HANDLE  a PGconn* / MYSQL* the shim tracks (psycopg2, psycopg, mysqlclient)
 *   CONNLEAK_KEY_FD      the socket descriptor of a socket-level record (asyncpg, aiomysql,
 * PyMySQL) CONNLEAK_KEY_NONE    unknown: the checkout is still recorded, unlinked */
#define CONNLEAK_KEY_NONE 0
#define CONNLEAK_KEY_HANDLE 1
#define CONNLEAK_KEY_FD 2

/* How a checkout ended. */
#define CONNLEAK_RETURNED 0    /* given back to the pool: clean */
#define CONNLEAK_RECLAIMED 1   /* the garbage collector reclaimed it while checked out: a leak */
#define CONNLEAK_INVALIDATED 2 /* the pool closed/discarded it while checked out: clean */

/* Registers a pool once (kind such as "sqlalchemy.QueuePool", "asyncpg.Pool";
 * name stable for the process, e.g. "sqlalchemy#1 postgresql://app@127.0.0.1:5432/db"
 * (redacted by the shim); max_size -1 when unknown). Returns a pool id > 0,
 * or 0 when tracking is off. */
unsigned long long connleak_pool_register(const char* kind, const char* name, const char* target,
                                          int max_size) __attribute__((weak));

/* A connection now belongs to the pool (opened for it): idle in the pool at
 * exit it is "pooled", not leaked. 0 on success, -1 if the key is unknown. */
int connleak_pool_adopt(unsigned long long pool_id, int key_kind, unsigned long long key)
    __attribute__((weak));

/* A connection was lent out; the checkout stack (native + Python) is taken
 * here. `task` names the asyncio task holding it (NULL for none). Returns a
 * checkout id > 0, 0 when tracking is off. */
unsigned long long connleak_checkout(unsigned long long pool_id, int key_kind,
                                     unsigned long long key, const char* task)
    __attribute__((weak));

/* The asyncio task holding checkout `checkout_id` (extension): `task` is the
 * task object (a PyObject*), passed with the GIL held (ctypes.PyDLL with a
 * py_object argument). The shim keeps a weak reference, never the task, and
 * shows the task's suspended coroutine stack (what asyncio.Task.get_stack()
 * walks) as "what the holder is doing now" in checkout_threshold alerts and
 * pool snapshots, read under the GIL with C getters only. 0, or -1 for an
 * unknown or ended checkout or an object that takes no weak reference. */
int connleak_checkout_task(unsigned long long checkout_id, void* task) __attribute__((weak));

/* connleak_checkout and connleak_checkin as Python builtin functions
 * (extension, for connleak's Python package): returns a new reference to the
 * tuple (checkout, checkin), checkout(pool_id, key_kind, key, task_name,
 * task) -> id (task_name a str or None, task the asyncio task or None: it is
 * given to connleak_checkout_task), checkin(checkout_id, how) -> 0 | -1.
 * Call with the GIL held (ctypes.PyDLL, restype py_object), Python >= 3.8;
 * NULL when the interpreter's C API is not found (then use ctypes). */
void* connleak_python_functions(void) __attribute__((weak));

/* The checkout ended (`how`: CONNLEAK_RETURNED, _RECLAIMED, _INVALIDATED).
 * 0 on success, -1 for an unknown or already-ended checkout id. */
int connleak_checkin(unsigned long long checkout_id, int how) __attribute__((weak));

/* The pool ran dry (an acquire timed out after `waited_seconds`): writes one
 * snapshot of its checkouts (trigger "pool_exhausted"), rate-limited per pool.
 * 0 if written, 1 if rate-limited, -1 when tracking is off. */
int connleak_pool_exhausted(unsigned long long pool_id, double waited_seconds)
    __attribute__((weak));

/* Test attribution (extension). Called by connleak's pytest plugin
 * (python/connleak/pytest_plugin.py) from pytest hooks, never from inside a
 * hooked call; any test runner can call them.
 *
 * A context names what runs now: a test (its node id) or a fixture being set
 * up (fixture name and scope, plus the node id of the test that requested
 * it). Intern each context once, then switch between them: every connection
 * and checkout opened while a context is current carries it (JSON "context",
 * the text report's "test ..." / "fixture ... of ..."). The current context
 * is process-wide, not per thread: what a test starts on helper threads is
 * that test's too (see collector/core/contexts.h). */

/* The id of (test, fixture, scope), the same for the same triple (fixture and
 * scope NULL or "" for the test itself). Strings are copied and redacted.
 * Returns an id > 0, or 0 when tracking is off. */
unsigned long long connleak_context_intern(const char* test, const char* fixture, const char* scope)
    __attribute__((weak));

/* Makes `context` current (0: none). Returns the previous current context. */
unsigned long long connleak_context_set(unsigned long long context) __attribute__((weak));

/* What `context` left behind, counted: connections opened under it and still
 * open (neither ignored nor adopted by a pool: a pool's idle connection is
 * not a leak), checkouts taken under it and not returned or reclaimed by the
 * garbage collector, plus 1 when `hold_threshold` > 0 and a checkout of it
 * was held longer than that many seconds before it came back. Suppressed
 * stacks are not counted. -1 when tracking is off. Cheap: no symbolization. */
long connleak_context_leaks(unsigned long long context, double hold_threshold)
    __attribute__((weak));

/* The same, as JSON: {"context": {...}, "connections": [...], "checkouts":
 * [...], "held_longest": {...} | null}, each entry as in the report plus
 * "text" (its stacks as the text report prints them, the program's frames
 * first). Writes at most `size` bytes (NUL-terminated when size > 0) and
 * returns the full length without the NUL: call again with a larger buffer
 * when it is >= size. -1 when tracking is off or the context is unknown. */
long connleak_context_report(unsigned long long context, double hold_threshold, char* buffer,
                             unsigned long size) __attribute__((weak));

#ifdef __cplusplus
}
#endif

#define CONNLEAK_DUMP() (connleak_dump ? connleak_dump() : -1)
#define CONNLEAK_CHECK() (connleak_check ? connleak_check() : -1L)
#define CONNLEAK_IGNORE(handle) (connleak_ignore ? connleak_ignore(handle) : -1)

#endif /* CONNLEAK_CONNLEAK_H */
