"""QueuePool limit of size 2 overflow 0 reached: the pool is warmed by clean
requests, then two threads each keep a session inside a transaction
(hold_device_a, hold_device_b) and wait; a third request times out
(pool_timeout=0.5: the wait under test, not synchronisation). The threads are
then released and give their sessions back: nothing leaks.
argv[1]: pg (psycopg2) or mysql (PyMySQL)."""
import os
import sys
import threading

from sqlalchemy import create_engine, exc, text
from sqlalchemy.orm import Session


def url(driver):
    if driver == "pg":
        return "postgresql+psycopg2://postgres@{}:{}/postgres".format(os.environ["CONNLEAK_TEST_PG_HOST"],
                                                                      os.environ["CONNLEAK_TEST_PG_PORT"])
    return "mysql+pymysql://{}:{}@{}:{}/{}".format(
        os.environ["CONNLEAK_TEST_MYSQL_USER"], os.environ["CONNLEAK_TEST_MYSQL_PASSWORD"],
        os.environ["CONNLEAK_TEST_MYSQL_HOST"], os.environ["CONNLEAK_TEST_MYSQL_PORT"],
        os.environ["CONNLEAK_TEST_MYSQL_DB"])


engine = create_engine(url(sys.argv[1]), pool_size=2, max_overflow=0, pool_timeout=0.5)
holding = threading.Barrier(3)
release = threading.Event()


def warm_up():
    for _ in range(3):
        with Session(engine) as session:
            session.execute(text("select 1"))


def wait_for_release():
    release.wait()  # HOLDER-WAIT-LINE


def hold_device_a():
    with Session(engine) as session:
        session.execute(text("select 1"))  # HOLD-A-LINE
        holding.wait()
        wait_for_release()


def hold_device_b():
    with Session(engine) as session:
        session.execute(text("select 2"))  # HOLD-B-LINE
        holding.wait()
        wait_for_release()


def handle_request():
    try:
        with Session(engine) as session:
            session.execute(text("select 3"))
    except exc.TimeoutError as e:
        print("timeout", str(e).split(",")[0], flush=True)


warm_up()
threads = [threading.Thread(target=hold_device_a, name="device-a"),
           threading.Thread(target=hold_device_b, name="device-b")]
for t in threads:
    t.start()
holding.wait()
handle_request()
release.set()
for t in threads:
    t.join()
handle_request()
engine.dispose()
print("done", flush=True)
