// Activity from the wire for server-side prepared statements (issue 15):
// mysql2's execute() sends COM_STMT_PREPARE once, then COM_STMT_EXECUTE for
// each run (its statement cache). One text query first. Literals and bound
// values carry "hunter2": they must reach no output. The connection is kept
// open at exit (the leak the report lists with its activity).
const mysql = require('mysql2/promise');
const {mysqlOptions, runThenExit} = require('./three_connections');

let kept = null;

async function runPrepared() {
  const c = await mysql.createConnection(mysqlOptions());
  await c.query("SET @k = 'hunter2-set'");
  for (let i = 0; i < 2; ++i) {
    const [rows] = await c.execute("SELECT ? + 5 AS v, 'hunter2-stmt' AS s, ? AS b", [37, 'hunter2-bound']);
    if (Number(rows[0].v) !== 42) throw new Error('bad value');
  }
  return c;
}

runThenExit(async () => {
  kept = await runPrepared();
  console.log('server_id ' + kept.threadId);
  console.log('done');
});
