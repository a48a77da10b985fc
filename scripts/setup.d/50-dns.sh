# DNS decoder tests (tests/integration/test_dns_live.py): BIND 9 serves DNSSEC-signed test
# zones on a free port from a throw-away directory; dig queries it. The package's own
# service is not used (nothing listens on port 53).
APT_PACKAGES+=(bind9 bind9-utils bind9-dnsutils)
