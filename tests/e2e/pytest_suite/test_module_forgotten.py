"""A module-scoped fixture that never closes its connection: judged when the
module ends and blamed on the fixture, never on the tests that used it."""
import psycopg2
import pytest

from conftest import KEPT, conninfo


@pytest.fixture(scope="module")
def forgotten_conn():
    conn = psycopg2.connect(conninfo())  # LEAK-MODULE-FIXTURE
    KEPT.append(conn)
    return conn


def test_forgotten_first(forgotten_conn):
    assert not forgotten_conn.closed


def test_forgotten_last(forgotten_conn):
    assert not forgotten_conn.closed
