# A connection opened from a Ruby Thread (not the main one), one from the main
# thread, one from a Fiber, all kept in globals until exit: each carries the
# Ruby frames of the thread (or fiber) that opened it.
require "pg"

def connect_db
  PG.connect(host: ENV["CONNLEAK_TEST_PG_HOST"], port: ENV["CONNLEAK_TEST_PG_PORT"],
             dbname: ENV["CONNLEAK_TEST_PG_APP_DB"], user: ENV["CONNLEAK_TEST_PG_APP_USER"],
             password: ENV["CONNLEAK_TEST_PG_APP_PASSWORD"])
end

def keep_on_main = ($on_main = connect_db)
def keep_in_worker = ($in_worker = connect_db)
def keep_in_fiber = ($in_fiber = connect_db)

keep_on_main
Fiber.new { keep_in_fiber }.resume
worker = Thread.new { keep_in_worker }
worker.join
puts "done"
