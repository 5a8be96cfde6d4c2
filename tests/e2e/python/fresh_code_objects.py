"""Functions made from generated source one after another, each called once to
open (and leak) a connection, then dropped and collected: their code objects
are freed as soon as nothing holds them, and a new one may be allocated at a
freed one's address. The shim names frames through a cache keyed by code
object: every leak must still carry its own function, file and line.
Usage: fresh_code_objects.py COUNT"""
import gc
import os
import sys

import psycopg2

DSN = os.environ["CONNLEAK_TEST_PG_CONNINFO"]
kept = []
for i in range(int(sys.argv[1])):
    # make_<i> at line i + 2 of "<generated i>": both differ per function.
    source = "\n" * i + f"def make_{i}(connect, dsn):\n    return connect(dsn)\n"
    scope = {}
    exec(compile(source, f"<generated {i}>", "exec"), scope)
    kept.append(scope[f"make_{i}"](psycopg2.connect, DSN))
    del scope
    gc.collect()
print("opened", len(kept))
