# DHCPv4 live tests (tests/integration/test_dhcpv4_live.py): dnsmasq as the DHCP server and
# BusyBox udhcpc as the client, each in a network namespace the test creates (root, iproute2).
# dnsmasq-base is the bare program: unlike the dnsmasq package it ships no service, so
# nothing starts on the host and takes ports 53 or 67.
APT_PACKAGES+=(dnsmasq-base udhcpc iproute2)

setup_dhcpv4() {
  for tool in /usr/sbin/dnsmasq /usr/sbin/udhcpc; do
    if [ ! -x "$tool" ]; then
      echo "$tool is not installed" >&2
      return 1
    fi
  done
  if dpkg-query -W -f='${Status}' dnsmasq 2>/dev/null | grep -q "install ok installed"; then
    echo "note: the dnsmasq package (with its service) is installed; the tests use their own instances" >&2
  fi
}
SETUP_STEPS+=(setup_dhcpv4)
