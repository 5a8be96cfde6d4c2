# Connections opened while Ruby shuts down: from an at_exit block and from an
# object finalizer (Ruby runs the finalizers left at exit during its cleanup).
# The execution context is still whole then, so each gets its Ruby frames.
require "pg"

def connect_db
  PG.connect(host: ENV["CONNLEAK_TEST_PG_HOST"], port: ENV["CONNLEAK_TEST_PG_PORT"],
             dbname: ENV["CONNLEAK_TEST_PG_APP_DB"], user: ENV["CONNLEAK_TEST_PG_APP_USER"],
             password: ENV["CONNLEAK_TEST_PG_APP_PASSWORD"])
end

def open_at_exit = ($at_exit = connect_db)
def open_in_finalizer = ($finalized = connect_db)

at_exit { open_at_exit }
ObjectSpace.define_finalizer(Object.new, proc { open_in_finalizer })
puts "done"
