#include "shim/track/socket_table.h"

#include <new>

#include "collector/core/fork_mutex.h"

namespace connleak::shim::sock {

std::atomic<std::uint8_t> g_watch[kMaxFds];
std::atomic<std::uint32_t> g_conn_of[kMaxFds];

namespace {

// Slots come in chunks allocated on first need and never freed (type-stable:
// a hook that raced with a close still reads a SockConn, never freed memory).
constexpr std::uint32_t kChunkBits = 10;
constexpr std::uint32_t kChunkSize = 1u << kChunkBits;
constexpr std::uint32_t kChunks = 64;
std::atomic<SockConn*> g_chunks[kChunks];
std::atomic<int> g_high{-1};

// Constant-initialized: hooks may run before any constructor.
constinit ForkMutex g_pool_mutex;
SockConn* g_free = nullptr;       // guarded by g_pool_mutex
std::uint32_t g_chunks_made = 0;  // guarded by g_pool_mutex

bool grow_locked() {
  if (g_chunks_made == kChunks) return false;
  auto* chunk = new (std::nothrow) SockConn[kChunkSize];
  if (!chunk) return false;
  std::uint32_t base = g_chunks_made * kChunkSize;
  for (std::uint32_t i = kChunkSize; i-- > 0;) {
    chunk[i].index = base + i;
    chunk[i].next_free = g_free;
    g_free = &chunk[i];
  }
  g_chunks[g_chunks_made].store(chunk, std::memory_order_release);
  ++g_chunks_made;
  return true;
}

}  // namespace

SockConn* conn_at(std::uint32_t index) {
  if (index >= kChunks * kChunkSize) return nullptr;
  SockConn* chunk = g_chunks[index >> kChunkBits].load(std::memory_order_acquire);
  return chunk ? &chunk[index & (kChunkSize - 1)] : nullptr;
}

SockConn* conn_of_key(std::uintptr_t key) {
  if ((key >> 56) != 0xC0) return nullptr;
  return conn_at(static_cast<std::uint32_t>((key >> 4) & 0xFFFFFFFFu));
}

SockConn* conn_alloc() {
  std::lock_guard<ForkMutex> lock(g_pool_mutex);
  if (!g_free && !grow_locked()) return nullptr;
  SockConn* conn = g_free;
  g_free = conn->next_free;
  conn->next_free = nullptr;
  conn->conv.reset();
  conn->record_id.store(0, std::memory_order_relaxed);
  conn->blind.store(0, std::memory_order_relaxed);
  conn->candidate = {};
  conn->begin_stack.store(0, std::memory_order_relaxed);
  conn->begin_py_stack.store(0, std::memory_order_relaxed);
  conn->closing.store(false, std::memory_order_relaxed);
  conn->closing_by_finalizer.store(false, std::memory_order_relaxed);
  conn->refs.store(1, std::memory_order_release);
  return conn;
}

bool conn_release(SockConn* conn) {
  return conn->refs.fetch_sub(1, std::memory_order_acq_rel) == 1;
}

void conn_free(SockConn* conn) {
  std::lock_guard<ForkMutex> lock(g_pool_mutex);
  conn->next_free = g_free;
  g_free = conn;
}

void bind_fd(int fd, SockConn* conn, std::uint8_t watch_bits) {
  if (static_cast<unsigned>(fd) >= static_cast<unsigned>(kMaxFds)) return;
  int high = g_high.load(std::memory_order_relaxed);
  while (fd > high && !g_high.compare_exchange_weak(high, fd, std::memory_order_relaxed)) {
  }
  g_conn_of[fd].store(conn->index + 1, std::memory_order_release);
  g_watch[fd].store(watch_bits, std::memory_order_release);
}

SockConn* unbind_fd(int fd) {
  if (static_cast<unsigned>(fd) >= static_cast<unsigned>(kMaxFds)) return nullptr;
  g_watch[fd].store(0, std::memory_order_relaxed);
  std::uint32_t slot = g_conn_of[fd].exchange(0, std::memory_order_acq_rel);
  return slot ? conn_at(slot - 1) : nullptr;
}

int high_water() {
  return g_high.load(std::memory_order_relaxed);
}

void after_fork_child() {
  // The parent's sockets are the parent's: forget them here. Their slots are
  // not returned to the free list (another fd may still alias them).
  int high = g_high.load(std::memory_order_relaxed);
  for (int fd = 0; fd <= high; ++fd) {
    g_watch[fd].store(0, std::memory_order_relaxed);
    g_conn_of[fd].store(0, std::memory_order_relaxed);
  }
}

}  // namespace connleak::shim::sock
