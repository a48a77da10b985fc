# ICMP and flow live tests (tests/integration/test_icmp_live.py, test_flows_live.py):
# iputils ping (v4 and v6), nftables to drop echo replies inside a namespace; tshark
# (-z conv) and iproute2 come from the base list and 30-live.sh.
APT_PACKAGES+=(iputils-ping nftables)
