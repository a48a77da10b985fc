# SIP live tests (tests/integration/test_sip_live.py): sipp from Debian's sip-tester, run as
# user agent client and server on free ports with the scenarios in tests/sip/.
APT_PACKAGES+=(sip-tester tcpdump)

setup_sip() {
  local version
  # sipp -v exits non-zero; scripts/test runs with pipefail, so read its output first.
  version=$(sipp -v 2>&1 || true)
  if ! grep -q "SIPp v3" <<<"$version"; then
    echo "sipp (sip-tester) 3.x is needed for the SIP live tests" >&2
    return 1
  fi
}
SETUP_STEPS+=(setup_sip)
