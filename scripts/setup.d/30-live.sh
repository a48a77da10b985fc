# Live capture tests (tests/test_live*.py): libpcap is already in the base list;
# capsh drops CAP_NET_RAW, setpriv switches to nobody, ip creates a veth/netns pair.
APT_PACKAGES+=(libcap2-bin util-linux iproute2)
