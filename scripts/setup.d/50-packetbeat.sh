# The oracle: the real Packetbeat 9.3.0, built from Elastic's Go modules into the user's cache
# once per machine (scripts/build-packetbeat; cgo needs libpcap-dev). tests/oracle compares
# wirebeat's events with its events on every shared capture and every live recording.
APT_PACKAGES+=(libpcap-dev)

setup_packetbeat() {
  local code=0
  scripts/build-packetbeat >/dev/null || code=$?
  if [ "$code" -eq 0 ]; then
    return 0
  fi
  if [ "${CI:-}" = "true" ]; then
    echo "setup_packetbeat: cannot build Packetbeat 9.3.0 (see above); CI=true needs it" >&2
    return 1
  fi
  echo "setup_packetbeat: no Packetbeat 9.3.0; the Packetbeat comparison tests will be skipped" >&2
}
SETUP_STEPS+=(setup_packetbeat)
