#pragma once
// The crash-safe journal's writer (format: collector/journal/journal_format.h).
// Installed as the collector's JournalSink when report_dir is set; the file is
// created at the first connection a process opens (a process that never
// connects leaves nothing behind, like its exit report).
namespace connleak::shim::journal {

// At start-up: installs the writer when report_dir is set.
void install();
// After the exit report was written: the journal has nothing left to tell.
// Removed, or with keep_journal=1 marked as reported and kept.
void finish_after_exit_report();
// In a fork child: the parent's mapping is the parent's journal; the child
// starts its own at its first connection.
void after_fork_child();

}  // namespace connleak::shim::journal
