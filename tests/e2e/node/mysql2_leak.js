// Same shape as pg_leak.js with mysql2 (pure JavaScript MySQL protocol).
const mysql = require('mysql2/promise');

let kept = null;

async function connectDb() {
  const c = await mysql.createConnection({
    host: process.env.CONNLEAK_TEST_MYSQL_HOST,
    port: Number(process.env.CONNLEAK_TEST_MYSQL_PORT),
    user: process.env.CONNLEAK_TEST_MYSQL_USER,
    password: process.env.CONNLEAK_TEST_MYSQL_PASSWORD,
    database: process.env.CONNLEAK_TEST_MYSQL_DB,
  });
  const [rows] = await c.query('SELECT 41+1 AS v');
  if (Number(rows[0].v) !== 42) throw new Error('bad value');
  return c;
}

async function reportTotals() { const c = await connectDb(); await c.end(); }
async function refreshCache() { const c = await connectDb(); await c.end(); }
async function openSession() { kept = await connectDb(); }

(async () => {
  await reportTotals();
  await refreshCache();
  await openSession();
  console.log('done');
  process.exit(0);  // the kept connection is still open: the leak
})().catch((e) => { console.error(e.message); process.exit(1); });
