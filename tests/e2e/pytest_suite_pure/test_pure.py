"""PyMySQL (socket-level records) and SQLAlchemy + PyMySQL sessions: a clean
test next to each leak."""
import os

import pymysql
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session

KEPT = []
ENV = os.environ


def connect():
    return pymysql.connect(host=ENV["CONNLEAK_TEST_MYSQL_HOST"],
                           port=int(ENV["CONNLEAK_TEST_MYSQL_PORT"]),
                           user=ENV["CONNLEAK_TEST_MYSQL_USER"],
                           password=ENV["CONNLEAK_TEST_MYSQL_PASSWORD"],
                           database=ENV["CONNLEAK_TEST_MYSQL_DB"])


ENGINE = create_engine("mysql+pymysql://{}:{}@{}:{}/{}".format(
    ENV["CONNLEAK_TEST_MYSQL_USER"], ENV["CONNLEAK_TEST_MYSQL_PASSWORD"],
    ENV["CONNLEAK_TEST_MYSQL_HOST"], ENV["CONNLEAK_TEST_MYSQL_PORT"],
    ENV["CONNLEAK_TEST_MYSQL_DB"]))


def test_pymysql_clean():
    conn = connect()
    conn.close()


def test_pymysql_leak():
    KEPT.append(connect())  # LEAK-PYMYSQL


def test_session_closed():
    with Session(ENGINE) as session:
        assert session.execute(text("select 1")).scalar() == 1


def test_session_not_closed():
    session = Session(ENGINE)
    assert session.execute(text("select 1")).scalar() == 1  # LEAK-SESSION
