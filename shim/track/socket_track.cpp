#include "shim/track/socket_track.h"

#include <arpa/inet.h>
#include <dlfcn.h>
#include <netinet/in.h>
#include <sched.h>
#include <sys/auxv.h>
#include <sys/un.h>

#include <cerrno>
#include <cstring>
#include <mutex>
#include <string>

#include "collector/core/fork_mutex.h"
#include "collector/core/fork_safe_static.h"
#include "collector/core/registry.h"
#include "collector/core/script_frames.h"
#include "collector/core/string_table.h"
#include "collector/util/logger.h"
#include "shim/hooks/real_symbol.h"
#include "shim/runtime/guard.h"
#include "shim/runtime/runtime.h"
#include "shim/runtime/worker_thread.h"
#include "shim/track/activity_track.h"
#include "shim/track/capture.h"
#include "shim/track/pool_snapshot.h"
#include "shim/track/socket_table.h"
#include "shim/track/tracking.h"

namespace connleak::shim::sock {

namespace {

int depth() {
  return static_cast<int>(options().stack_depth);
}

// errno is the host's: nothing we do after the real call may change it.
class KeepErrno {
 public:
  KeepErrno() : saved_(errno) {}
  ~KeepErrno() { errno = saved_; }

 private:
  int saved_;
};

// --- who called connect() ----------------------------------------------------
// A socket that libpq or the MySQL client connects belongs to a handle their
// hooks already track: one connection, one record. The test is "the caller's
// object itself defines the client's connect function", so a renamed copy
// (a wheel's libpq) counts too. A client library linked statically into the
// executable is the exception: its calls bind inside the executable and never
// reach our hooks, so there the socket is the only thing we can see.
bool defines_client_api(const Dl_info& info) {
  void* handle = dlopen(info.dli_fname, RTLD_NOLOAD | RTLD_LAZY);
  if (!handle) return false;
  bool found = false;
  for (const char* name : {"PQconnectPoll", "mysql_real_connect", "mysql_init"}) {
    void* sym = dlsym(handle, name);
    Dl_info where;
    if (sym && dladdr(sym, &where) && where.dli_fbase == info.dli_fbase) found = true;
  }
  close_dl_handle(handle);
  return found;
}

bool from_client_library(const void* caller) {
  const ObjectRange& main_program = fork_safe_static([] {
    return new ObjectRange(object_range_of(reinterpret_cast<const void*>(getauxval(AT_ENTRY))));
  });
  if (main_program.contains(reinterpret_cast<std::uintptr_t>(caller))) return false;
  Dl_info info;
  if (!dladdr(caller, &info) || !info.dli_fbase || !info.dli_fname) return false;
  struct Entry {
    void* base;
    bool client;
  };
  static constinit ForkMutex mutex;
  static Entry cache[32];
  static int used = 0;
  {
    std::lock_guard<ForkMutex> lock(mutex);
    for (int i = 0; i < used; ++i)
      if (cache[i].base == info.dli_fbase) return cache[i].client;
  }
  bool client = defines_client_api(info);
  std::lock_guard<ForkMutex> lock(mutex);
  if (used < 32) cache[used++] = {info.dli_fbase, client};
  return client;
}

// --- what connect() was given ------------------------------------------------
std::string describe_peer(const sockaddr* addr, socklen_t len) {
  char buf[INET6_ADDRSTRLEN] = {};
  if (addr->sa_family == AF_INET && len >= static_cast<socklen_t>(sizeof(sockaddr_in))) {
    auto* in = reinterpret_cast<const sockaddr_in*>(addr);
    inet_ntop(AF_INET, &in->sin_addr, buf, sizeof buf);
    return std::string("tcp ") + buf + ":" + std::to_string(ntohs(in->sin_port));
  }
  if (addr->sa_family == AF_INET6 && len >= static_cast<socklen_t>(sizeof(sockaddr_in6))) {
    auto* in6 = reinterpret_cast<const sockaddr_in6*>(addr);
    inet_ntop(AF_INET6, &in6->sin6_addr, buf, sizeof buf);
    return std::string("tcp [") + buf + "]:" + std::to_string(ntohs(in6->sin6_port));
  }
  if (addr->sa_family == AF_UNIX) {
    auto* un = reinterpret_cast<const sockaddr_un*>(addr);
    std::size_t max =
        len > offsetof(sockaddr_un, sun_path) ? len - offsetof(sockaddr_un, sun_path) : 0;
    if (max > sizeof un->sun_path) max = sizeof un->sun_path;
    if (max == 0) return "unix (unnamed)";
    if (un->sun_path[0] == '\0')
      return "unix @" + std::string(un->sun_path + 1, max - 1);  // abstract
    return "unix " + std::string(un->sun_path, strnlen(un->sun_path, max));
  }
  return "socket";
}

bool is_stream_socket(int fd) {
  int type = 0;
  socklen_t len = sizeof type;
  return getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) == 0 && type == SOCK_STREAM;
}

// --- records -----------------------------------------------------------------
void register_database(SockConn& conn, wire::Protocol protocol) {
  const SockConn::Candidate seen = conn.candidate;
  conn.candidate = {};  // the record holds these from now on
  ConnRecord rec;
  rec.handle = key_of(conn.index);
  rec.part = SocketPart{wire::protocol_name(protocol), seen.fd};
  rec.thread = seen.thread;
  rec.opened = seen.opened;
  rec.open_stack = seen.stack;
  rec.py_open_stack = seen.py_stack;
  rec.target = seen.target;
  std::uint64_t id = Registry::instance().on_open(rec);
  conn.record_id.store(id, std::memory_order_release);
  if (options().verbosity >= 2)
    log().info("connleak: {} connection {} opened at socket level: fd {} {}",
               wire::protocol_name(protocol), id, seen.fd, seen.target);
  ensure_worker_thread();
}

// Drops one fd's reference; at the last one the connection is closed.
void release(SockConn* conn, const char* fn) {
  if (!conn_release(conn)) return;
  const auto* handle = reinterpret_cast<const void*>(key_of(conn->index));
  if (conn->record_id.load(std::memory_order_acquire) == 0) {
    // not a database: nothing was recorded
  } else if (conn->closing.load(std::memory_order_acquire)) {
    CapturedStacks said_goodbye{conn->closing_stack.load(std::memory_order_relaxed),
                                conn->closing_py_stack.load(std::memory_order_relaxed)};
    record_close_initiated(Library::kSocket, handle, fn, said_goodbye,
                           conn->closing_by_finalizer.load(std::memory_order_relaxed));
  } else {
    record_close(Library::kSocket, handle, fn);
  }
  // A thread still parsing this slot's bytes finishes before it is reused.
  while (conn->busy.load(std::memory_order_acquire)) sched_yield();
  conn_free(conn);
}

// A goodbye sent from a finalizer: the program dropped the connection and the
// garbage collector closed it (an object's __del__; SQLAlchemy's
// _finalize_fairy, which runs for a pooled connection garbage-collected while
// checked out: the "non-checked-in connection" its warning is about). Python's
// names only: another language's function may be called __del__ for any reason.
bool sent_by_finalizer(StackId py_stack) {
  if (script_host() != ScriptLanguage::kPython) return false;
  for (std::uintptr_t entry : script_depot().get(py_stack)) {
    const auto* frame = reinterpret_cast<const ScriptFrame*>(entry);
    if (!frame || !frame->function) continue;
    if (std::strcmp(frame->function, "__del__") == 0 ||
        std::strcmp(frame->function, "_finalize_fairy") == 0)
      return true;
  }
  return false;
}

// A statement in the bytes the client sent (option statements): called while
// the conversation is parsed, under `busy`; allocation-free except for a
// named prepare (normalized once, see activity_track.h).
void on_statement(void* ctx, const wire::StatementEvent& e) {
  auto* conn = static_cast<SockConn*>(ctx);
  if (!options().statements || !conn->record_id.load(std::memory_order_acquire)) return;
  const auto* handle = reinterpret_cast<const void*>(key_of(conn->index));
  const auto dialect = conn->conv.protocol() == wire::Protocol::kMysql
                           ? activity::Dialect::kMysql
                           : activity::Dialect::kPostgres;
  const auto* sql = reinterpret_cast<const char*>(e.sql);
  switch (e.kind) {
    case wire::StatementEvent::Kind::kText:
      activity_sent(handle, sql, e.sql_len, dialect, e.cut);
      break;
    case wire::StatementEvent::Kind::kPrepare:
      activity_prepare(handle, e.name, e.name_len, sql, e.sql_len, dialect, e.cut);
      break;
    case wire::StatementEvent::Kind::kExecute:
      activity_execute(handle, e.name, e.name_len);
      break;
    case wire::StatementEvent::Kind::kPrepareText:
      activity_prepare_pending(handle, sql, e.sql_len, dialect, e.cut);
      break;
    case wire::StatementEvent::Kind::kPrepared:
      activity_prepared_as(handle, e.name, e.name_len);
      break;
  }
}

std::uint8_t watch_bits(const wire::Conversation& conv) {
  return static_cast<std::uint8_t>((conv.wants_sent() ? kWatchSent : 0) |
                                   (conv.wants_received() ? kWatchReceived : 0));
}

void merge(wire::Feed& into, const wire::Feed& f) {
  into.decided |= f.decided;
  into.cancel_request |= f.cancel_request;
  into.went_blind |= f.went_blind;
  if (f.has_txn) {
    into.has_txn = true;
    into.txn = f.txn;
  }
  if (f.server_id >= 0) into.server_id = f.server_id;
  into.may_begin |= f.may_begin;
  into.closing |= f.closing;
  into.refused |= f.refused;
  if (f.refused_code) into.refused_code = f.refused_code;
}

// What the bytes taught, applied outside the conversation's lock: capturing a
// transaction's stack may wait for the GIL, and the thread holding the GIL may
// be the one waiting for this conversation.
void apply(SockConn& conn, const wire::Feed& feed, wire::Protocol protocol, wire::Blind blind) {
  const bool database = protocol == wire::Protocol::kPostgres || protocol == wire::Protocol::kMysql;
  if (feed.decided && database) register_database(conn, protocol);
  if (feed.refused)
    write_refusal_snapshot(
        protocol == wire::Protocol::kMysql
            ? wire::mysql_refusal_text(feed.refused_code)
            : "PostgreSQL SQLSTATE 53300: too many clients (ErrorResponse at startup)");
  if (!conn.record_id.load(std::memory_order_acquire)) return;
  auto key = key_of(conn.index);
  if (feed.server_id >= 0)
    Registry::instance().update(key, [&](ConnRecord& rec) { rec.server_id = feed.server_id; });
  if (feed.may_begin) {
    CapturedStacks stacks = capture_stacks(depth());
    conn.begin_stack.store(stacks.native, std::memory_order_relaxed);
    conn.begin_py_stack.store(stacks.script, std::memory_order_relaxed);
  }
  if (feed.closing && !conn.closing.load(std::memory_order_relaxed)) {
    CapturedStacks stacks = capture_stacks(depth());
    conn.closing_stack.store(stacks.native, std::memory_order_relaxed);
    conn.closing_py_stack.store(stacks.script, std::memory_order_relaxed);
    conn.closing_by_finalizer.store(stacks.script && sent_by_finalizer(stacks.script),
                                    std::memory_order_relaxed);
    conn.closing.store(true, std::memory_order_release);
  }
  if (feed.has_txn) {
    // ReadyForQuery / an OK packet: the statements sent so far are answered.
    activity_result(reinterpret_cast<const void*>(key), false);
    CapturedStacks began{conn.begin_stack.load(std::memory_order_relaxed),
                         conn.begin_py_stack.load(std::memory_order_relaxed)};
    note_command_state(Library::kSocket, reinterpret_cast<const void*>(key), feed.txn, &began);
  }
  if (feed.went_blind) {
    conn.blind.store(static_cast<std::uint8_t>(blind), std::memory_order_release);
    Registry::instance().update(key, [&](ConnRecord& rec) {
      if (auto* socket = std::get_if<SocketPart>(&rec.part))
        socket->txn_note = wire::blind_reason(blind);
    });
    note_command_state(Library::kSocket, reinterpret_cast<const void*>(key), TxnState::kUnknown);
  }
}

}  // namespace

void on_connect(int fd, const sockaddr* addr, socklen_t len, const void* caller) {
  KeepErrno keep;
  if (!addr || !should_track() || in_vfork_child()) return;
  if (addr->sa_family != AF_INET && addr->sa_family != AF_INET6 && addr->sa_family != AF_UNIX)
    return;
  Reentry guard;
  // A descriptor reused after a close we could not see (raw syscall,
  // io_uring): its old conversation is over.
  if (SockConn* old = unbind_fd(fd)) release(old, "close (unseen, descriptor reused by connect)");
  if (static_cast<unsigned>(fd) >= static_cast<unsigned>(kMaxFds)) {
    static std::once_flag once;
    std::call_once(once, [&] {
      log().warn("connleak: socket descriptors at or above {} are not tracked (fd {})", kMaxFds,
                 fd);
    });
    return;
  }
  if (!is_stream_socket(fd) || from_client_library(caller)) return;
  SockConn* conn = conn_alloc();
  if (!conn) return;
  SockConn::Candidate& seen = conn->candidate;
  seen.opened = now();
  seen.thread = current_tid();
  CapturedStacks stacks = capture_stacks(depth());
  seen.stack = stacks.native;
  seen.py_stack = stacks.script;
  seen.fd = fd;
  seen.target = intern_string(describe_peer(addr, len));
  bind_fd(fd, conn, kWatchSent | kWatchReceived);
}

void on_data(int fd, bool sent, const iovec* iov, int iovcnt, std::size_t n) {
  if (in_shim() || static_cast<unsigned>(fd) >= static_cast<unsigned>(kMaxFds)) return;
  KeepErrno keep;
  std::uint32_t slot = g_conn_of[fd].load(std::memory_order_acquire);
  SockConn* conn = slot ? conn_at(slot - 1) : nullptr;
  if (!conn) {
    g_watch[fd].store(0, std::memory_order_relaxed);
    return;
  }
  // Two threads on one socket's bytes at once (a reader and a writer): the
  // second does not wait (it might hold the GIL the first needs later); the
  // bytes it would have parsed are gone, so the conversation stops being
  // followed and its transaction state becomes unknown.
  constexpr auto kLost = static_cast<std::uint8_t>(wire::Blind::kLost);
  if (conn->busy.exchange(true, std::memory_order_acquire)) {
    g_watch[fd].store(0, std::memory_order_relaxed);
    if (conn->blind.exchange(kLost, std::memory_order_acq_rel) != kLost) {
      Reentry guard;
      wire::Feed lost;
      lost.went_blind = true;
      apply(*conn, lost, wire::Protocol::kUndecided, wire::Blind::kLost);
    }
    return;
  }
  wire::Feed feed;
  if (g_conn_of[fd].load(std::memory_order_acquire) == slot &&
      conn->blind.load(std::memory_order_relaxed) != kLost) {
    wire::Conversation& conv = conn->conv;
    if (sent) conv.set_statement_sink(&on_statement, conn);
    for (int i = 0; i < iovcnt && n > 0 && !conv.done(); ++i) {
      std::size_t take = iov[i].iov_len < n ? iov[i].iov_len : n;
      const auto* bytes = static_cast<const std::uint8_t*>(iov[i].iov_base);
      merge(feed, sent ? conv.client_sent(bytes, take) : conv.client_received(bytes, take));
      n -= take;
    }
    g_watch[fd].store(watch_bits(conv), std::memory_order_relaxed);
  } else {
    g_watch[fd].store(0, std::memory_order_relaxed);
  }
  const wire::Protocol protocol = conn->conv.protocol();
  const wire::Blind blind = conn->conv.blind();
  conn->busy.store(false, std::memory_order_release);
  if (!feed.decided && !feed.has_txn && !feed.went_blind && !feed.may_begin && !feed.closing &&
      feed.server_id < 0 && !feed.refused)
    return;
  Reentry guard;
  apply(*conn, feed, protocol, blind);
}

void on_data(int fd, bool sent, const void* buf, std::size_t n) {
  iovec one{const_cast<void*>(buf), n};
  on_data(fd, sent, &one, 1, n);
}

void on_close(int fd, const char* fn) {
  if (in_vfork_child()) return;  // the parent's descriptors, in memory shared with it
  KeepErrno keep;
  SockConn* conn = unbind_fd(fd);
  if (!conn) return;
  Reentry guard;
  release(conn, fn);
}

void on_close_range(unsigned first, unsigned last) {
  if (in_vfork_child()) return;
  int high = high_water();
  if (high < 0 || first > static_cast<unsigned>(high)) return;
  if (last > static_cast<unsigned>(high)) last = static_cast<unsigned>(high);
  KeepErrno keep;
  Reentry guard;
  // One vfork check for the whole range (it is a getpid() system call).
  for (unsigned fd = first; fd <= last; ++fd)
    if (has_conn(static_cast<int>(fd)))
      if (SockConn* conn = unbind_fd(static_cast<int>(fd))) release(conn, "close_range");
}

void on_dup(int oldfd, int newfd) {
  if (oldfd == newfd || in_vfork_child() ||
      static_cast<unsigned>(newfd) >= static_cast<unsigned>(kMaxFds))
    return;
  KeepErrno keep;
  Reentry guard;
  // dup2/dup3 onto a tracked descriptor closed it first.
  if (SockConn* replaced = unbind_fd(newfd)) release(replaced, "dup2");
  if (!has_conn(oldfd)) return;
  SockConn* conn = conn_at(g_conn_of[oldfd].load(std::memory_order_acquire) - 1);
  if (!conn) return;
  conn->refs.fetch_add(1, std::memory_order_acq_rel);
  bind_fd(newfd, conn, g_watch[oldfd].load(std::memory_order_relaxed));
}

// From the record alone: its socket slot may already serve another connection.
HandleState socket_state(const ConnRecord& record) {
  HandleState out;
  const SocketPart* socket = record.socket();
  if (!socket) return out;
  out.state = "connected";
  if (socket->txn_note) out.txn_note = socket->txn_note;
  return out;
}

}  // namespace connleak::shim::sock
