"""A SQLAlchemy pool: three checkouts returned and left idle (never flagged:
an idle pooled connection holds no transaction), one checkout held inside a
transaction across slow work (flagged by txn_threshold), then dispose()."""
import os
import sys

import psycopg2
from sqlalchemy import create_engine, text

DSN = os.environ["CONNLEAK_TEST_PG_CONNINFO"]
engine = create_engine("postgresql+psycopg2://", creator=lambda: psycopg2.connect(DSN), pool_size=5)


def warm_up_pool():
    conns = [engine.connect() for _ in range(3)]
    for c in conns:
        c.execute(text("select 1"))
    for c in conns:
        c.close()  # back to the pool, which rolls back: no transaction left open


def update_service_files():
    with engine.begin() as conn:
        conn.execute(text("select 1"))  # TXN-LINE
        # slow work while the transaction stays open: until the test has seen the
        # alert and closes our stdin (no sleep decides the timing)
        sys.stdin.readline()


warm_up_pool()
update_service_files()
engine.dispose()
print("done")
