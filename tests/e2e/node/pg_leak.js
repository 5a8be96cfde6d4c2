// Three connections from three named functions: two closed, one kept in a
// global until exit. node-postgres speaks the protocol itself; libuv closes
// its sockets with syscall(SYS_close).
const { Client } = require('pg');
const {threeConnections} = require('./three_connections');

threeConnections(async () => {
  const c = new Client({
    host: process.env.CONNLEAK_TEST_PG_HOST,
    port: Number(process.env.CONNLEAK_TEST_PG_PORT),
    user: process.env.CONNLEAK_TEST_PG_APP_USER,
    password: process.env.CONNLEAK_TEST_PG_APP_PASSWORD,
    database: process.env.CONNLEAK_TEST_PG_APP_DB,
  });
  await c.connect();
  const r = await c.query('SELECT 41+1 AS v');
  if (r.rows[0].v !== 42) throw new Error('bad value');
  return c;
});
