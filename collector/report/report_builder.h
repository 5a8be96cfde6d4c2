#pragma once
// Registry snapshot + symbolizer -> the Report model.
#include <functional>
#include <string>

#include "collector/core/checkouts.h"
#include "collector/core/registry.h"
#include "collector/report/report_model.h"
#include "collector/report/symbolize.h"

namespace connleak {

// What the client library says about a live handle. Supplied by the shim, which
// knows how to reach the right library copy; the collector itself never calls
// into libpq or the MySQL client.
struct HandleState {
  std::string state =
      "unknown";                // "connected" | "failed" | "connecting" | "initialized" | "unknown"
  std::int64_t server_id = -1;  // -1: unknown
  // Why the transaction state is "unknown" when it is ("encrypted", ...).
  std::string txn_note;
};
using StateProbe = std::function<HandleState(const ConnRecord&)>;

struct ProcessInfo {
  std::int64_t pid = 0;
  std::int64_t ppid = 0;
  std::vector<std::string> argv;  // already redacted
};
// Reads pid, ppid and the command line (passwords on it redacted).
ProcessInfo current_process();
// Command lines carry passwords too (`psql "password=..."`, `mysql -pSECRET`,
// `--password=...`): every argument after argv[0] is scrubbed.
std::vector<std::string> redact_argv(std::vector<std::string> argv);

// The registry's library as a report names it (a switch: a new library fails
// to compile there rather than print a wrong name).
ConnLibrary library_of(Library library);

// The report's view of one open connection (status "leaked" at exit, "open" otherwise).
Connection open_connection_view(const ConnRecord& record, bool at_exit, std::int64_t now_mono,
                                Symbolizer& symbolizer, const StateProbe& probe);

// Removes handles that were initialized but never connected (MySQL's
// mysql_init without a connect) and takes them out of the summary.
void drop_initialized_only(Report& report);

// `checkouts` (optional) adds the pools and checkouts (extension): adopted
// connections are "pooled" at exit, not leaked; open checkouts are.
Report build_report(const Snapshot& snapshot, const Named<Trigger>& trigger,
                    const ProcessInfo& process, Symbolizer& symbolizer, const StateProbe& probe,
                    const CheckoutSnapshot* checkouts = nullptr);

// One checkout / pool as a report shows it (status and held time are the caller's).
Checkout checkout_view(const CheckoutRecord& record, Symbolizer& symbolizer);
PoolInfo pool_view(const PoolRecord& pool);

// The pools and checkouts part of a report (build_report calls it).
void add_checkouts(Report& report, const Snapshot& snapshot, const CheckoutSnapshot& checkouts,
                   std::int64_t now_mono, Symbolizer& symbolizer);

}  // namespace connleak
