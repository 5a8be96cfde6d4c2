"""A SQLAlchemy app shaped like a web service: every request opens a Session
and closes it; the engine is never disposed (the normal shape of a web app).
  clean: only such requests. Its idle pooled connection is not a leak.
  leak:  also one request that never closes its Session (the canary).
  gc:    also one checkout dropped without close(): the garbage collector
         reclaims it ("non-checked-in connection"), still a leak.
argv[1]: pg (psycopg2) or mysql (PyMySQL, pure Python: runs on any interpreter)."""
import gc
import os
import sys

from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session


def url(driver):
    if driver == "pg":
        return "postgresql+psycopg2://postgres@{}:{}/postgres".format(os.environ["CONNLEAK_TEST_PG_HOST"],
                                                                      os.environ["CONNLEAK_TEST_PG_PORT"])
    return "mysql+pymysql://{}:{}@{}:{}/{}".format(
        os.environ["CONNLEAK_TEST_MYSQL_USER"], os.environ["CONNLEAK_TEST_MYSQL_PASSWORD"],
        os.environ["CONNLEAK_TEST_MYSQL_HOST"], os.environ["CONNLEAK_TEST_MYSQL_PORT"],
        os.environ["CONNLEAK_TEST_MYSQL_DB"])


engine = create_engine(url(sys.argv[1]), pool_size=3)
FORGOTTEN = []


def handle_request(i):
    with Session(engine) as session:
        assert session.execute(text("select :i"), {"i": i}).scalar() == i


def export_report():
    session = Session(engine)
    session.execute(text("select 1"))  # LEAK-LINE
    FORGOTTEN.append(session)  # never closed


def checkout_and_forget():
    conn = engine.connect()  # GC-LINE
    conn.execute(text("select 1"))
    # returns without conn.close(): the Connection becomes garbage


for i in range(5):
    handle_request(i)
if sys.argv[2] == "leak":
    export_report()
if sys.argv[2] == "gc":
    checkout_and_forget()
    gc.collect()
handle_request(5)
print("pool", engine.pool.status(), flush=True)
print("done", flush=True)
