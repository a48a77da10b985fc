# Cassandra live tests (tests/integration/test_cassandra_live.py): Apache Cassandra 5.0 from
# Maven Central (org.apache.cassandra:cassandra-all and its runtime jars, resolved into
# tests/cassandra/target/lib), run on Java 17 by tests/integration/cassandra_server.py.
APT_PACKAGES+=(openjdk-17-jdk-headless maven)

setup_cassandra() {
  local dir=tests/cassandra
  local lib="$dir/target/lib"
  if [ -d "$lib" ] && compgen -G "$lib/cassandra-all-*.jar" >/dev/null && [ "$lib" -nt "$dir/pom.xml" ]; then
    echo "cassandra test node: up to date"
    return 0
  fi
  rm -rf "$lib"
  (cd "$dir" && mvn -q -B dependency:copy-dependencies)
  touch "$lib"
}
SETUP_STEPS+=(setup_cassandra)
