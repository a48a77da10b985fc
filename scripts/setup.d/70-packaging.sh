# packaging/: tests/packaging checks the systemd unit with `systemd-analyze verify` and runs
# wirebeat with only the unit's capabilities (setpriv from util-linux).
APT_PACKAGES+=(systemd util-linux)
