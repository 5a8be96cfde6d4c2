// What the Node.js programs share: the MariaDB fixture's connection options,
// and the three-connection shape (three named functions, two connections
// closed, one kept in a global until exit: the leak).
function mysqlOptions() {
  return {
    host: process.env.CONNLEAK_TEST_MYSQL_HOST,
    port: Number(process.env.CONNLEAK_TEST_MYSQL_PORT),
    user: process.env.CONNLEAK_TEST_MYSQL_USER,
    password: process.env.CONNLEAK_TEST_MYSQL_PASSWORD,
    database: process.env.CONNLEAK_TEST_MYSQL_DB,
  };
}

// Runs `main` (async), then exits 0 with whatever it kept still open, or 1
// with the error's message.
function runThenExit(main) {
  main()
    .then(() => process.exit(0))
    .catch((e) => { console.error(e.message); process.exit(1); });
}

let kept = null;

// connectDb: async () => a connection with an async end().
function threeConnections(connectDb) {
  async function reportTotals() { const c = await connectDb(); await c.end(); }
  async function refreshCache() { const c = await connectDb(); await c.end(); }
  async function openSession() { kept = await connectDb(); }
  runThenExit(async () => {
    await reportTotals();
    await refreshCache();
    await openSession();
    console.log('done');  // the kept connection is still open at exit: the leak
  });
}

module.exports = { mysqlOptions, runThenExit, threeConnections };
