"""What the suite's tests share: where the throwaway PostgreSQL is, and a
place to keep connections alive on purpose (a leak that the garbage
collector cannot take back before the plugin looks)."""
import os

KEPT = []


def conninfo():
    return os.environ["CONNLEAK_TEST_PG_CONNINFO"]


def pg_url(driver):
    return "postgresql+{}://postgres@{}:{}/postgres".format(
        driver, os.environ["CONNLEAK_TEST_PG_HOST"], os.environ["CONNLEAK_TEST_PG_PORT"])
