# memcache live tests (tests/integration/test_memcache_live.py): Debian's memcached, started
# by the test session on free TCP and UDP ports (its own service is not used). The clients,
# pymemcache and python-binary-memcached, come from the pyproject test extra.
APT_PACKAGES+=(memcached)
