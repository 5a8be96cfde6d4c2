# Connections opened from four Ruby threads at depth, while a fifth thread
# compacts the heap (GC.compact) nonstop: the compacting GC is the one that
# moves the objects the Ruby frame reader reads without the GVL. The process
# must run as without the shim; a capture that overlapped a collection is
# dropped, every other one names the right methods.
require "pg"

def connect_db
  PG.connect(host: ENV["CONNLEAK_TEST_PG_HOST"], port: ENV["CONNLEAK_TEST_PG_PORT"],
             dbname: ENV["CONNLEAK_TEST_PG_APP_DB"], user: ENV["CONNLEAK_TEST_PG_APP_USER"],
             password: ENV["CONNLEAK_TEST_PG_APP_PASSWORD"])
end

def nested_open(depth) = depth.zero? ? connect_db : nested_open(depth - 1)

$kept = Queue.new
stop = false
compacting = Queue.new
compactor = Thread.new do
  count = 0
  until stop
    GC.compact
    count += 1
    compacting << true if count == 1
  end
  count
end
compacting.pop  # the connects start once the heap has been compacted at least once
4.times.map { Thread.new { 10.times { $kept << nested_open(8) } } }.each(&:join)
stop = true
puts "compactions=#{compactor.value}"
puts "done"
