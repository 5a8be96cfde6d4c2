# Three connections from three named methods: two closed, one kept in a
# global until exit (Ruby's VM cleanup then closes it: a leak of the program's).
require 'pg'

$kept = nil

def connect_db
  c = PG.connect(host: ENV['CONNLEAK_TEST_PG_HOST'], port: ENV['CONNLEAK_TEST_PG_PORT'],
                 user: ENV['CONNLEAK_TEST_PG_APP_USER'], password: ENV['CONNLEAK_TEST_PG_APP_PASSWORD'],
                 dbname: ENV['CONNLEAK_TEST_PG_APP_DB'])
  raise 'bad value' unless c.exec('SELECT 41+1 AS v')[0]['v'] == '42'
  c
end

def report_totals; c = connect_db; c.close; end
def refresh_cache; c = connect_db; c.close; end
def open_session; $kept = connect_db; end

report_totals
refresh_cache
open_session
puts 'done'
