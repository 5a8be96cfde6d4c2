#pragma once
// Where the registry and the checkout table report opens and closes for the
// crash-safe journal (shim/journal/). The collector only calls it; the shim
// installs the writer when report_dir is set. Every call is on the hook's hot
// path: implementations take no lock and make no system call there (the first
// open of a process, which creates the file, is the exception).
#include <atomic>
#include <cstdint>

namespace connleak {

struct ConnRecord;
struct CheckoutRecord;

class JournalSink {
 public:
  // Return the record's slot + 1, or 0 when it is not journaled.
  virtual std::uint32_t opened(const ConnRecord& record) = 0;
  virtual std::uint32_t checkout_opened(const CheckoutRecord& record) = 0;
  // A record's details changed (a MySQL connect learned its target).
  virtual void updated(std::uint32_t slot, const ConnRecord& record) = 0;
  virtual void closed(std::uint32_t slot) = 0;

 protected:
  ~JournalSink() = default;
};

namespace detail {
inline std::atomic<JournalSink*> g_journal_sink{nullptr};
}

inline JournalSink* journal_sink() {
  return detail::g_journal_sink.load(std::memory_order_acquire);
}
inline void set_journal_sink(JournalSink* sink) {
  detail::g_journal_sink.store(sink, std::memory_order_release);
}

}  // namespace connleak
