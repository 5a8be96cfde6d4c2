#pragma once
// The report as users see it: already symbolized, independent of the process
// that produced it. The shim builds it from a registry snapshot; the CLI reads
// it back from JSON files. Both render text through the same code.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "collector/report/frame_list.h"
#include "collector/report/report_enums.h"

namespace connleak {

struct Stacks {
  FrameList native;
  // Present when the host runs an interpreter the shim reads (CPython, Ruby,
  // Perl, PHP): that language's frames, innermost first.
  std::optional<FrameList> script;
  ScriptLanguage language =
      ScriptLanguage::kPython;  // of `script`; reports before Ruby... knew only Python
  bool empty() const { return native.empty() && (!script || script->empty()); }
};

// Transaction state of a connection when the report was taken (libpq: from
// PQtransactionStatus; MySQL: SERVER_STATUS_IN_TRANS; sockets: ReadyForQuery).
struct TransactionInfo {
  std::string state;                // "idle" | "active" | "in_transaction" | "in_error" | "unknown"
  double seconds = 0;               // how long the current transaction has been open
  std::optional<Stacks> began;      // where the transaction's first command was sent
  std::optional<std::string> note;  // why the state is unknown: "encrypted", "compressed", ...
};

struct AlertInfo {
  Named<AlertKind> kind;
  double after_seconds = 0;
};

// Extension (test attribution, issue 17): what the program was running when
// the connection or checkout was opened, as a test runner named it.
struct ContextInfo {
  std::string test;                    // pytest node id
  std::optional<std::string> fixture;  // set when opened while a fixture was set up
  std::optional<std::string> scope;    // that fixture's scope ("function", "module", ...)
};

struct Connection {
  std::uint64_t id = 0;
  Named<ConnLibrary> library;
  std::string handle;  // "0x55d0c0ffee00"; sockets: "fd:7"
  std::string target;  // redacted
  Named<ConnStatus> status;
  std::string state;  // "connected" | "failed" | "connecting" | "unknown"
  double age_seconds = 0;
  std::string opened_at;
  std::optional<std::string> closed_at;
  std::int64_t thread = 0;
  std::uint32_t resets = 0;
  std::string client_module;
  std::vector<AlertInfo> alerts;
  Stacks acquired;
  // MySQL: mysql_init's stacks, when it was called from another function than
  // the connect (`acquired`); extension.
  std::optional<Stacks> init_stack;
  std::optional<Stacks> closed_from;        // where it was (first) closed
  std::optional<Stacks> closed_again_from;  // double close: where it was closed again
  std::optional<std::string> closed_again_at;
  std::optional<std::int64_t> server_id;  // PQbackendPID / mysql_thread_id
  std::optional<std::string> protocol;    // socket-level: "postgresql" | "mysql"
  std::optional<std::string> closed_by;   // e.g. "interpreter_exit": closed, but not by the program
  std::optional<TransactionInfo> transaction;
  std::optional<std::int64_t> pid;  // set in merged reports (connleak report)
  // Activity (option statements): present once the connection sent a statement.
  std::optional<std::uint64_t> statements;
  std::optional<std::string> last_statement;  // normalized: literals are `?`
  std::optional<std::string> last_used_at;
  std::optional<double> idle_seconds;  // since the last statement was sent or its result read
  std::optional<bool> busy;            // a statement is still running (idle_seconds: how long)
  std::optional<std::uint64_t> pool;   // adopted by this pool (connleak_pool_adopt)
  std::optional<ContextInfo> context;  // extension: the test / fixture that opened it
};

// Extension (pool checkouts): a pool registered by python/connleak's adapters.
struct PoolInfo {
  std::uint64_t id = 0;
  std::string kind;  // "sqlalchemy.QueuePool", "asyncpg.Pool", ...
  std::string name;
  std::string target;  // redacted
  std::int64_t max_size = -1;
  std::uint64_t connections = 0;    // open connections it adopted
  std::uint64_t checked_out = 0;    // checkouts not yet returned
  std::optional<std::int64_t> pid;  // set in merged reports
};

// Extension (pool checkouts): one loan of a pooled connection to the program.
struct Checkout {
  std::uint64_t id = 0;
  std::uint64_t pool = 0;
  std::optional<std::uint64_t> connection;  // the connection record it lends; null = unlinked
  Named<CheckoutStatus> status;
  std::string checked_out_at;
  std::optional<std::string> returned_at;
  double held_seconds = 0;
  std::int64_t thread = 0;
  std::optional<std::string> task;  // asyncio task name
  std::optional<bool> in_transaction;
  std::vector<AlertInfo> alerts;           // "checkout_held"
  Stacks acquired;                         // the checkout stack
  std::optional<Stacks> holder_now;        // what the holder was doing (at the alert / snapshot)
  std::optional<std::string> holder_note;  // why holder_now is missing
  std::optional<std::int64_t> pid;         // set in merged reports
  std::optional<ContextInfo> context;      // extension: the test / fixture that took it
};

struct CheckoutSummary {
  std::uint64_t taken = 0;
  std::uint64_t returned = 0;
  std::uint64_t open = 0;
  std::uint64_t leaked = 0;  // never returned at exit, or reclaimed by the garbage collector
};

struct Summary {
  std::uint64_t opened = 0;
  std::uint64_t closed = 0;
  std::uint64_t open = 0;     // still open now (leaked at exit + inherited)
  std::uint64_t leaked = 0;   // connections with status "leaked"
  std::uint64_t flagged = 0;  // connections carrying at least one alert
  std::uint64_t double_closes = 0;
  std::uint64_t unknown_closes = 0;  // closes of handles the shim never saw opened
  std::uint64_t resets = 0;
  std::uint64_t inherited = 0;  // open handles inherited from the parent across fork()
  std::uint64_t ignored = 0;    // open handles passed to connleak_ignore()
  bool complete = true;         // false: some registry shard could not be read in time
  std::uint64_t pooled = 0;     // open connections adopted by a pool (status "pooled" at exit)
  CheckoutSummary checkouts;
};

// A suppression that removed connections from this report (LSan's table).
struct SuppressionUse {
  std::string pattern;  // without "leak:"
  std::string origin;   // "file:line"
  std::uint64_t hits = 0;
};

// Everything a report says besides its connections: the writers copy this
// part (to escape it, to serialize it) without copying 10,000 connections.
struct ReportHead {
  std::string tool = "connleak";
  std::string version;
  std::int64_t pid = 0;
  std::int64_t ppid = 0;
  std::vector<std::string> argv;
  Named<Trigger> trigger;
  std::string generated_at;
  Summary summary;
  std::vector<SuppressionUse> suppressions_used;  // applied by the process that wrote it
  std::vector<PoolInfo> pools;
  std::vector<Checkout> checkouts;
  // Snapshots: the pool that ran dry and how long its caller waited, or what the server said.
  std::optional<std::uint64_t> snapshot_pool;
  std::optional<double> waited_seconds;
  std::optional<std::string> refusal;  // "SQLSTATE 53300 too many clients" / "MySQL 1040 ..."
  // Extension: what the reader of a journal could not use or had to skip, one line each.
  std::vector<std::string> notes;
};

struct Report : ReportHead {
  std::vector<Connection> connections;
};

}  // namespace connleak
