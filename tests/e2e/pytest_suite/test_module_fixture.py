"""A module-scoped fixture that holds a connection on purpose for its
tests and closes it when the module ends: neither it nor its tests leak."""
import psycopg2
import pytest

from conftest import conninfo


@pytest.fixture(scope="module")
def shared_conn():
    conn = psycopg2.connect(conninfo())  # SHARED-CONN
    yield conn
    conn.close()


def test_shared_first(shared_conn):
    assert not shared_conn.closed


def test_shared_second(shared_conn):
    assert not shared_conn.closed
