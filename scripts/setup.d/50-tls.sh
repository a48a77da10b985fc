# TLS live tests (tests/integration/test_tls_live.py): openssl s_server/s_client as peers,
# tshark's JA3/JA3S (tls.handshake.ja3, ja3s; Wireshark >= 3.6) as the reference.
APT_PACKAGES+=(openssl tshark tcpdump)

setup_tls() {
  # grep -c reads everything (grep -q would close the pipe early and, under scripts/test's
  # pipefail, tshark's SIGPIPE would fail the check).
  if [ "$(tshark -G fields 2>/dev/null | grep -c $'\ttls.handshake.ja3s\t')" = 0 ]; then
    echo "tshark does not expose tls.handshake.ja3s (Wireshark 3.6 or later needed)" >&2
    return 1
  fi
}
SETUP_STEPS+=(setup_tls)
