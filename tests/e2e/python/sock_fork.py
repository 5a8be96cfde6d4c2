"""Children do not disturb the parent's socket-level connections. With an
asyncpg and a PyMySQL connection open, the program runs /bin/true through
subprocess (vfork + close_range in the child, then posix_spawn) and forks a
child that leaves with os._exit(0); then it uses both connections again. After
closing the asyncpg one it forks a second child that returns through the
interpreter's normal exit, which closes the child's copy of PyMySQL's socket
(no COM_QUIT: PyMySQL's __del__ only closes). Finally it closes everything:
nothing leaks in the parent, and each child exits 0.

(Not the second child with asyncpg still open: asyncpg's Connection.__del__
calls terminate() while the event loop is open, which sends Terminate over the
shared socket and deregisters it from the shared epoll: it kills the parent's
session. A hazard of forking an asyncio program, whatever connleak does.)"""
import asyncio
import os
import subprocess
import sys

import asyncpg
import pymysql

PG = dict(host=os.environ["CONNLEAK_TEST_PG_HOST"], port=int(os.environ["CONNLEAK_TEST_PG_PORT"]),
          user="postgres", database="postgres")
MY = dict(host=os.environ["CONNLEAK_TEST_MYSQL_HOST"], port=int(os.environ["CONNLEAK_TEST_MYSQL_PORT"]),
          user=os.environ["CONNLEAK_TEST_MYSQL_USER"], password=os.environ["CONNLEAK_TEST_MYSQL_PASSWORD"],
          database=os.environ["CONNLEAK_TEST_MYSQL_DB"])


def query_pg(loop, apg, n):
    assert loop.run_until_complete(apg.fetchval("select $1::int", n)) == n


def query_my(my, n):
    with my.cursor() as cur:
        cur.execute("select %s", (n,))
        assert cur.fetchone()[0] == n


def fork_child(normal_exit):
    pid = os.fork()
    if pid == 0:
        if normal_exit:
            sys.exit(0)  # interpreter teardown in the child closes its copy of the socket
        os._exit(0)
    _, status = os.waitpid(pid, 0)
    code = os.waitstatus_to_exitcode(status)
    print("child", pid, "normal_exit" if normal_exit else "os._exit", "exit", code, flush=True)
    return code


def main():
    loop = asyncio.new_event_loop()
    apg = loop.run_until_complete(asyncpg.connect(**PG))
    my = pymysql.connect(**MY)
    query_pg(loop, apg, 1)
    query_my(my, 1)

    subprocess.run(["/bin/true"], check=True)  # vfork, close_range(3, ~0) in the child, exec
    subprocess.run(["/bin/true"], check=True, close_fds=False)  # posix_spawn
    query_pg(loop, apg, 2)
    query_my(my, 2)

    codes = [fork_child(normal_exit=False)]
    query_pg(loop, apg, 3)  # both still work after the child is gone
    query_my(my, 3)
    loop.run_until_complete(apg.close())
    loop.close()

    codes.append(fork_child(normal_exit=True))
    query_my(my, 4)
    my.close()
    return 0 if codes == [0, 0] else 1


if __name__ == "__main__":
    rc = main()
    print("done", flush=True)
    sys.exit(rc)
