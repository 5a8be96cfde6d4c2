"""psycopg2 connections: a clean test, leaks kept in a global, a leak from a
function-scoped fixture (the test's), the markers and their canaries."""
import psycopg2
import pytest

from conftest import KEPT, conninfo


def select_one(conn):
    with conn.cursor() as cur:
        cur.execute("select 1")
        return cur.fetchone()[0]


def test_clean():
    conn = psycopg2.connect(conninfo())
    assert select_one(conn) == 1
    conn.close()


def test_leaks_psycopg2():
    conn = psycopg2.connect(conninfo())  # LEAK-PSYCOPG2
    assert select_one(conn) == 1
    KEPT.append(conn)


@pytest.fixture
def leaky_fixture():
    conn = psycopg2.connect(conninfo())  # LEAK-FIXTURE
    KEPT.append(conn)
    yield conn


def test_uses_leaky_fixture(leaky_fixture):
    assert select_one(leaky_fixture) == 1


@pytest.mark.connleak(allow=1)
def test_allowed_one():
    KEPT.append(psycopg2.connect(conninfo()))  # ALLOWED-ONE


@pytest.mark.connleak(allow=1)
def test_allowed_one_leaks_two():
    KEPT.append(psycopg2.connect(conninfo()))  # ALLOWED-TWO-A
    KEPT.append(psycopg2.connect(conninfo()))  # ALLOWED-TWO-B


@pytest.mark.connleak(ignore=True)
def test_ignored():
    KEPT.append(psycopg2.connect(conninfo()))  # IGNORED


@pytest.mark.parametrize("leak", [False, True])
def test_param(leak):
    conn = psycopg2.connect(conninfo())  # LEAK-PARAM
    if leak:
        KEPT.append(conn)
    else:
        conn.close()
