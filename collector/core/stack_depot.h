#pragma once
// Interns native stacks (raw return addresses) once: records keep a 32-bit id.
// Lookups of a known stack are lock-free; only a stack never seen before takes
// a mutex. Nodes are never freed, so a span returned by get() stays valid for
// the life of the process (reports may be written while hooks still run).
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <span>
#include <vector>

#include "collector/core/fork_mutex.h"

namespace connleak {

using StackId = std::uint32_t;  // 0 = no stack
inline constexpr std::size_t kMaxFrames = 128;

class StackDepot {
 public:
  static StackDepot& instance();

  // Returns the id of this exact frame sequence, interning it on first sight.
  // Returns 0 for an empty stack or when the depot is full.
  StackId intern(const std::uintptr_t* frames, std::size_t count);
  std::span<const std::uintptr_t> get(StackId id) const;
  std::size_t size() const { return next_id_.load(std::memory_order_acquire) - 1; }
  // Bytes held by interned stacks (benchmarks, memory accounting).
  std::size_t bytes() const { return bytes_.load(std::memory_order_relaxed); }

  StackDepot();
  // Only test instances are destroyed; the process-wide one lives forever.
  ~StackDepot();
  StackDepot(const StackDepot&) = delete;
  StackDepot& operator=(const StackDepot&) = delete;

 private:
  struct Node {
    std::atomic<Node*> next;
    std::uint64_t hash;
    StackId id;
    std::uint32_t count;
    std::uintptr_t frames[1];  // really `count` entries
  };
  static constexpr std::size_t kBuckets = 1u << 14;
  static constexpr std::size_t kChunkBits = 12;
  static constexpr std::size_t kChunks = 256;  // 256 * 4096 = 1M stacks at most

  const Node* find(std::uint64_t hash, const std::uintptr_t* frames, std::size_t count) const;

  std::atomic<Node*>* buckets_;
  std::atomic<Node**> chunks_[kChunks];
  std::atomic<StackId> next_id_{1};
  std::atomic<std::size_t> bytes_{0};
  ForkMutex insert_mutex_;
};

}  // namespace connleak
