#include "collector/core/stack_depot.h"

#include <cstdlib>
#include <cstring>
#include <new>

#include "collector/core/fork_safe_static.h"
#include "collector/util/mix_hash.h"

namespace connleak {

namespace {
std::uint64_t hash_frames(const std::uintptr_t* frames, std::size_t count) {
  // FNV-1a over whole words, then a final avalanche: addresses share high bits.
  std::uint64_t h = 1469598103934665603ULL ^ count;
  for (std::size_t i = 0; i < count; ++i) {
    h ^= frames[i];
    h *= 1099511628211ULL;
  }
  return mix_hash(h);
}
}  // namespace

StackDepot& StackDepot::instance() {
  // Created on first use and never destroyed: hooks may run before our
  // constructors and after static destructors.
  StackDepot& depot = fork_safe_static([] { return new StackDepot; });
  return depot;
}

StackDepot::StackDepot() : buckets_(new std::atomic<Node*>[kBuckets]) {
  for (std::size_t i = 0; i < kBuckets; ++i) buckets_[i].store(nullptr, std::memory_order_relaxed);
  for (auto& c : chunks_) c.store(nullptr, std::memory_order_relaxed);
}

StackDepot::~StackDepot() {
  insert_mutex_.forget();
  for (std::size_t i = 0; i < kBuckets; ++i) {
    for (Node* n = buckets_[i].load(std::memory_order_relaxed); n;) {
      Node* next = n->next.load(std::memory_order_relaxed);
      n->~Node();
      std::free(n);
      n = next;
    }
  }
  for (auto& c : chunks_) std::free(c.load(std::memory_order_relaxed));
  delete[] buckets_;
}

const StackDepot::Node* StackDepot::find(std::uint64_t hash, const std::uintptr_t* frames,
                                         std::size_t count) const {
  for (const Node* n = buckets_[hash & (kBuckets - 1)].load(std::memory_order_acquire); n;
       n = n->next.load(std::memory_order_acquire)) {
    if (n->hash == hash && n->count == count &&
        std::memcmp(n->frames, frames, count * sizeof(std::uintptr_t)) == 0)
      return n;
  }
  return nullptr;
}

StackId StackDepot::intern(const std::uintptr_t* frames, std::size_t count) {
  if (count == 0) return 0;
  if (count > kMaxFrames) count = kMaxFrames;
  std::uint64_t hash = hash_frames(frames, count);
  if (const Node* hit = find(hash, frames, count)) return hit->id;

  std::lock_guard<ForkMutex> lock(insert_mutex_);
  if (const Node* hit = find(hash, frames, count)) return hit->id;  // lost a race
  StackId id = next_id_.load(std::memory_order_relaxed);
  std::size_t chunk = id >> kChunkBits;
  if (chunk >= kChunks) return 0;  // depot full: the record simply has no stack
  Node** slots = chunks_[chunk].load(std::memory_order_relaxed);
  if (!slots) {
    slots = static_cast<Node**>(std::calloc(std::size_t{1} << kChunkBits, sizeof(Node*)));
    if (!slots) return 0;
    chunks_[chunk].store(slots, std::memory_order_release);
  }
  std::size_t size = offsetof(Node, frames) + count * sizeof(std::uintptr_t);
  void* mem = std::malloc(size);
  if (!mem) return 0;
  Node* node = new (mem) Node{{nullptr}, hash, id, static_cast<std::uint32_t>(count), {0}};
  std::memcpy(node->frames, frames, count * sizeof(std::uintptr_t));
  slots[id & ((std::size_t{1} << kChunkBits) - 1)] = node;
  auto& head = buckets_[hash & (kBuckets - 1)];
  node->next.store(head.load(std::memory_order_relaxed), std::memory_order_relaxed);
  // Publish the id slot before the node becomes findable, then the node.
  next_id_.store(id + 1, std::memory_order_release);
  head.store(node, std::memory_order_release);
  bytes_.fetch_add(size + sizeof(Node*), std::memory_order_relaxed);
  return id;
}

std::span<const std::uintptr_t> StackDepot::get(StackId id) const {
  if (id == 0 || id >= next_id_.load(std::memory_order_acquire)) return {};
  Node** slots = chunks_[id >> kChunkBits].load(std::memory_order_acquire);
  if (!slots) return {};
  const Node* node = slots[id & ((std::size_t{1} << kChunkBits) - 1)];
  if (!node) return {};
  return {node->frames, node->count};
}

}  // namespace connleak
