#include "collector/policy/target_memo.h"

#include <sys/random.h>
#include <time.h>

#include <atomic>
#include <cstdint>
#include <cstring>
#include <string>

#include "collector/core/string_table.h"
#include "collector/policy/redact.h"
#include "collector/util/mix_hash.h"

// Header-only: the shim maps no library for it (issue 19's start-up target).
#define XXH_INLINE_ALL
#include <xxhash.h>

namespace connleak {

namespace {

// A handful per thread: a thread rarely alternates between more targets than
// that, and a miss costs one format.
constexpr std::size_t kSlots = 4;
constexpr std::size_t kMaxInput = 1024;

struct Slot {
  XXH128_hash_t key;
  const char* target;  // null: empty slot
};
struct Memo {
  Slot slots[kSlots];
  unsigned next;
};
// Trivially destructible, initial-exec: nothing to run at thread exit and no
// allocation on first use (hooks run on any thread, at any time).
thread_local Memo t_memo __attribute__((tls_model("initial-exec"))) = {};

// The hash's key. Its only job is that what the memo keeps is not a plain,
// recomputable hash of a password; any value works for correctness.
std::uint64_t seed() {
  static std::atomic<std::uint64_t> g_seed{0};
  std::uint64_t s = g_seed.load(std::memory_order_relaxed);
  if (__builtin_expect(s != 0, 1)) return s;
  std::uint64_t fresh = 0;
  if (getrandom(&fresh, sizeof fresh, GRND_NONBLOCK) != static_cast<ssize_t>(sizeof fresh)) {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    fresh =
        mix_hash(static_cast<std::uint64_t>(ts.tv_nsec) ^ reinterpret_cast<std::uintptr_t>(&fresh));
  }
  fresh |= 1;  // never 0, the "not yet" value
  std::uint64_t expected = 0;
  if (g_seed.compare_exchange_strong(expected, fresh, std::memory_order_relaxed)) return fresh;
  return expected;  // another thread's seed won; everyone uses that one
}

// Length-prefixed, so ("ab","c") and ("a","bc") differ.
bool put(unsigned char* buf, std::size_t& n, std::string_view s) {
  const auto len = static_cast<std::uint32_t>(s.size());
  if (s.size() > kMaxInput || n + sizeof len + s.size() > kMaxInput) return false;
  std::memcpy(buf + n, &len, sizeof len);
  if (!s.empty()) std::memcpy(buf + n + sizeof len, s.data(), s.size());
  n += sizeof len + s.size();
  return true;
}

// False when the inputs are too long to remember.
bool key_of(std::string_view secret,
            std::initializer_list<std::pair<std::string_view, std::string_view>> parts,
            XXH128_hash_t* key) {
  unsigned char buf[kMaxInput];
  std::size_t n = 0;
  bool fits = put(buf, n, secret);
  for (const auto& [k, v] : parts) fits = fits && put(buf, n, k) && put(buf, n, v);
  if (fits) *key = XXH3_128bits_withSeed(buf, n, seed());
  // The stack copy held the password's text: gone before returning.
  explicit_bzero(buf, n);
  return fits;
}

}  // namespace

const char* interned_target_without(
    std::string_view secret,
    std::initializer_list<std::pair<std::string_view, std::string_view>> parts) {
  XXH128_hash_t key;
  if (!key_of(secret, parts, &key)) return intern_string(format_target_without(secret, parts));
  Memo& memo = t_memo;
  for (const Slot& slot : memo.slots)
    if (slot.target && XXH128_isEqual(slot.key, key)) return slot.target;
  const char* target = intern_string(format_target_without(secret, parts));
  // A signal handler on this thread that connects sees the slot either empty
  // or whole, never a new key with the old target.
  Slot& slot = memo.slots[memo.next++ % kSlots];
  slot.target = nullptr;
  std::atomic_signal_fence(std::memory_order_seq_cst);
  slot.key = key;
  std::atomic_signal_fence(std::memory_order_seq_cst);
  slot.target = target;
  return target;
}

}  // namespace connleak
