# Real servers the decoder tests drive (started by pytest fixtures on 127.0.0.1 with
# throw-away data directories; the packages' own services are not used).
APT_PACKAGES+=(mariadb-server postgresql redis-server openssl)
