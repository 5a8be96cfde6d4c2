# Three connections from three named methods: two closed, one kept in a global
# until exit (Ruby's cleanup then frees it, and pg's free function closes it
# with PQfinish: a leak of the program's).
require "pg"

# With CONNLEAK_TEST_DUMP_EACH set (tests/e2e/ruby_stack_test.cpp), each
# connect is followed by a dump of the open connections (connleak_dump, the
# shim's public API, through Fiddle): the two closed later are listed there
# with their stacks (the exit report lists a closed connection only when it
# carries an alert).
def dump_if_asked
  return unless ENV["CONNLEAK_TEST_DUMP_EACH"]
  require "fiddle"
  Fiddle::Function.new(Fiddle::Handle::DEFAULT["connleak_dump"], [], Fiddle::TYPE_INT).call
end

def connect_db
  conn = PG.connect(host: ENV["CONNLEAK_TEST_PG_HOST"], port: ENV["CONNLEAK_TEST_PG_PORT"],
                    dbname: ENV["CONNLEAK_TEST_PG_APP_DB"], user: ENV["CONNLEAK_TEST_PG_APP_USER"],
                    password: ENV["CONNLEAK_TEST_PG_APP_PASSWORD"])
  raise "bad value" unless conn.exec("SELECT 41 + 1 AS v")[0]["v"] == "42"
  conn.exec("SET application_name = 'ruby'")
  dump_if_asked
  conn
end

def report_totals = connect_db.close
def refresh_cache = connect_db.close
def open_session = ($kept = connect_db)

report_totals
refresh_cache
open_session
puts "done"
