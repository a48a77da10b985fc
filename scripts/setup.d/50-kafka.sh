# Kafka output tests (tests/interop/test_kafka_output.py): Apache Kafka 4.1 in KRaft mode from
# Maven Central (org.apache.kafka:kafka_2.13 and its runtime jars, resolved into
# tests/kafka/target/lib), run on Java 17 (what Kafka 4.x brokers require) by
# tests/interop/kafka_broker.py. The client side (confluent-kafka) is a runtime dependency.
APT_PACKAGES+=(openjdk-17-jdk-headless maven)

setup_kafka() {
  local dir=tests/kafka
  local lib="$dir/target/lib"
  if [ -d "$lib" ] && compgen -G "$lib/kafka_2.13-*.jar" >/dev/null && [ "$lib" -nt "$dir/pom.xml" ]; then
    echo "kafka test broker: up to date"
    return 0
  fi
  rm -rf "$lib"
  (cd "$dir" && mvn -q -B dependency:copy-dependencies)
  touch "$lib"
}
SETUP_STEPS+=(setup_kafka)
