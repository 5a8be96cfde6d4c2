"""8 threads each open and close a connection and leak one, from a function
named after the thread, and print their native thread ids: every leaked
connection's Python stack must be its own thread's."""
import os
import threading

import psycopg2

LEAKED = []


def make_worker(i):
    def worker():
        c = psycopg2.connect(os.environ["CONNLEAK_TEST_PG_CONNINFO"])
        c.close()
        LEAKED.append(psycopg2.connect(os.environ["CONNLEAK_TEST_PG_CONNINFO"]))
        print(f"worker_{i} {threading.get_native_id()}", flush=True)
    worker.__code__ = worker.__code__.replace(co_name=f"worker_{i}")
    return worker


threads = [threading.Thread(target=make_worker(i)) for i in range(8)]
for t in threads:
    t.start()
for t in threads:
    t.join()
print("done")
