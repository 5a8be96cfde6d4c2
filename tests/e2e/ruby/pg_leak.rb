# Three connections from three named methods: two closed, one kept in a global
# until exit (Ruby's cleanup then frees it, and pg's free function closes it
# with PQfinish: a leak of the program's).
require "pg"

def connect_db
  conn = PG.connect(host: ENV["CONNLEAK_TEST_PG_HOST"], port: ENV["CONNLEAK_TEST_PG_PORT"],
                    dbname: ENV["CONNLEAK_TEST_PG_APP_DB"], user: ENV["CONNLEAK_TEST_PG_APP_USER"],
                    password: ENV["CONNLEAK_TEST_PG_APP_PASSWORD"])
  raise "bad value" unless conn.exec("SELECT 41 + 1 AS v")[0]["v"] == "42"
  conn.exec("SET application_name = 'ruby'")
  conn
end

def report_totals = connect_db.close
def refresh_cache = connect_db.close
def open_session = ($kept = connect_db)

report_totals
refresh_cache
open_session
puts "done"
