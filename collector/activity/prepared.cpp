#include "collector/activity/prepared.h"

#include <atomic>
#include <mutex>

#include "collector/core/fork_mutex.h"
#include "collector/util/mix_hash.h"

namespace connleak::activity {

namespace {

constexpr std::size_t kSlots = 8192;  // power of two
constexpr std::size_t kProbe = 16;

struct Slot {
  std::atomic<std::uint64_t> key{0};
  std::atomic<const char*> text{nullptr};
};
// Constant-initialized: usable from hooks that run before constructors.
Slot g_slots[kSlots];
constinit ForkMutex g_write_mutex;
std::atomic<std::size_t> g_evict{0};

}  // namespace

std::uint64_t prepared_key(std::uint64_t owner, const void* name, std::size_t name_len) {
  std::uint64_t h = 0xcbf29ce484222325ULL ^ mix_hash(owner);
  const auto* p = static_cast<const unsigned char*>(name);
  for (std::size_t i = 0; i < name_len; ++i) h = (h ^ p[i]) * 0x100000001b3ULL;
  h = mix_hash(h);
  return h ? h : 1;  // 0 marks a free slot
}

void prepared_put(std::uint64_t key, const char* normalized) {
  std::lock_guard<ForkMutex> lock(g_write_mutex);
  const std::size_t start = key & (kSlots - 1);
  Slot* target = nullptr;
  for (std::size_t i = 0; i < kProbe; ++i) {
    Slot& s = g_slots[(start + i) & (kSlots - 1)];
    const std::uint64_t k = s.key.load(std::memory_order_relaxed);
    if (k == key || k == 0) {
      target = &s;
      break;
    }
  }
  if (!target) target = &g_slots[(start + g_evict.fetch_add(1) % kProbe) & (kSlots - 1)];
  // Readers check the key before and after reading the text.
  target->key.store(0, std::memory_order_release);
  target->text.store(normalized, std::memory_order_release);
  target->key.store(key, std::memory_order_release);
}

const char* prepared_get(std::uint64_t key) {
  const std::size_t start = key & (kSlots - 1);
  for (std::size_t i = 0; i < kProbe; ++i) {
    const Slot& s = g_slots[(start + i) & (kSlots - 1)];
    const std::uint64_t k1 = s.key.load(std::memory_order_acquire);
    if (k1 == 0) return nullptr;
    if (k1 != key) continue;
    const char* text = s.text.load(std::memory_order_acquire);
    if (s.key.load(std::memory_order_acquire) == key) return text;
    return nullptr;
  }
  return nullptr;
}

}  // namespace connleak::activity
