// Java JDBC (issue 13): three connections from three named methods, two
// closed, one kept in a static field until exit. argv[0] names the driver:
// "postgresql" (pgjdbc) or "mariadb" (MariaDB Connector/J), both from
// Debian's jars. Run as a single-file source program (java -cp JAR
// ThreeConnections.java DRIVER): no build step.
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.ResultSet;

public class ThreeConnections {
  static Connection kept;
  static String driver;

  static String env(String name) {
    return System.getenv(name);
  }

  static Connection connect() throws Exception {
    if (driver.equals("postgresql"))
      return DriverManager.getConnection("jdbc:postgresql://" + env("CONNLEAK_TEST_PG_HOST") + ":"
              + env("CONNLEAK_TEST_PG_PORT") + "/" + env("CONNLEAK_TEST_PG_APP_DB"),
          env("CONNLEAK_TEST_PG_APP_USER"), env("CONNLEAK_TEST_PG_APP_PASSWORD"));
    return DriverManager.getConnection("jdbc:mariadb://" + env("CONNLEAK_TEST_MYSQL_HOST") + ":"
            + env("CONNLEAK_TEST_MYSQL_PORT") + "/" + env("CONNLEAK_TEST_MYSQL_DB"),
        env("CONNLEAK_TEST_MYSQL_USER"), env("CONNLEAK_TEST_MYSQL_PASSWORD"));
  }

  static void reportTotals() throws Exception {
    try (Connection c = connect(); ResultSet r = c.createStatement().executeQuery("SELECT 1")) {
      r.next();
    }
  }

  static void refreshCache() throws Exception {
    try (Connection c = connect()) {
      c.createStatement().execute("SELECT 2");
    }
  }

  static void openSession() throws Exception {
    kept = connect();
    kept.createStatement().execute("SELECT 3");
  }

  public static void main(String[] args) throws Exception {
    driver = args[0];
    reportTotals();
    refreshCache();
    openSession();
    System.out.println("done");
  }
}
