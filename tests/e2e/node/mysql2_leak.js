// Same shape as pg_leak.js with mysql2 (pure JavaScript MySQL protocol).
const mysql = require('mysql2/promise');
const {mysqlOptions, threeConnections} = require('./three_connections');

threeConnections(async () => {
  const c = await mysql.createConnection(mysqlOptions());
  const [rows] = await c.query('SELECT 41+1 AS v');
  if (Number(rows[0].v) !== 42) throw new Error('bad value');
  return c;
});
