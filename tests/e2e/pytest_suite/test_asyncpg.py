"""pytest-asyncio tests on asyncpg pools: one gives its connection back,
one keeps `await pool.acquire()`."""
import os

import asyncpg
import pytest

from conftest import KEPT


async def make_pool():
    return await asyncpg.create_pool(host=os.environ["CONNLEAK_TEST_PG_HOST"],
                                     port=int(os.environ["CONNLEAK_TEST_PG_PORT"]),
                                     user="postgres", database="postgres",
                                     min_size=1, max_size=2)


@pytest.mark.asyncio
async def test_async_clean():
    pool = await make_pool()
    async with pool.acquire() as conn:
        assert await conn.fetchval("select 1") == 1
    await pool.close()


@pytest.mark.asyncio
async def test_async_leaks_acquire():
    pool = await make_pool()
    conn = await pool.acquire()  # LEAK-ACQUIRE
    assert await conn.fetchval("select 1") == 1
    KEPT.append((pool, conn))
