# A thread Ruby never ran on (started from C through Fiddle: pthread_create
# with libpq's PQconnectdb as the thread function) opens a connection inside
# a Ruby process: it has no Ruby execution context, so it gets no Ruby frames
# (reading them would dereference null). The one the main thread opens gets its
# frames in the same run. Both are kept until exit.
require "pg"
require "fiddle"

def conninfo
  "host=#{ENV["CONNLEAK_TEST_PG_HOST"]} port=#{ENV["CONNLEAK_TEST_PG_PORT"]} " \
    "dbname=#{ENV["CONNLEAK_TEST_PG_APP_DB"]} user=#{ENV["CONNLEAK_TEST_PG_APP_USER"]} " \
    "password=#{ENV["CONNLEAK_TEST_PG_APP_PASSWORD"]}"
end

def open_on_ruby_thread = ($kept = PG.connect(conninfo))

def open_on_c_thread
  libc = Fiddle::Handle::DEFAULT
  create = Fiddle::Function.new(libc["pthread_create"], [Fiddle::TYPE_VOIDP] * 4, Fiddle::TYPE_INT)
  join = Fiddle::Function.new(libc["pthread_join"], [Fiddle::TYPE_VOIDP] * 2, Fiddle::TYPE_INT)
  thread = Fiddle::Pointer.malloc(Fiddle::SIZEOF_VOIDP)
  info = Fiddle::Pointer[conninfo]
  # PQconnectdb(const char*) returning PGconn* is a thread function's shape.
  raise "pthread_create failed" unless create.call(thread, nil, libc["PQconnectdb"], info).zero?
  result = Fiddle::Pointer.malloc(Fiddle::SIZEOF_VOIDP)
  raise "pthread_join failed" unless join.call(thread.ptr, result).zero?
  $c_conn = result.ptr
  raise "no connection from the C thread" if $c_conn.null?
end

open_on_c_thread
open_on_ruby_thread
puts "done"
