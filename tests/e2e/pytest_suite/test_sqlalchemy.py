"""Sync SQLAlchemy sessions on one engine (pool): a session closed, and one
never closed, which keeps its pool checkout."""
from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session

from conftest import pg_url

ENGINE = create_engine(pg_url("psycopg2"), pool_size=2)


def test_session_closed():
    with Session(ENGINE) as session:
        assert session.execute(text("select 1")).scalar() == 1


def test_session_not_closed():
    session = Session(ENGINE)
    assert session.execute(text("select 1")).scalar() == 1  # LEAK-SESSION
