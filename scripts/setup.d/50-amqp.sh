# AMQP live tests (tests/integration/test_amqp_live.py): Debian's RabbitMQ broker, started by
# the tests on a free port with its own node name, epmd port and data directories; pika (the
# client) comes with pyproject's test extra. The package's own service is not used: it is kept
# from starting while the package installs (a policy-rc.d of our own, only when none exists),
# and stopped and disabled afterwards should it run anyway.
APT_PACKAGES+=(rabbitmq-server)

_AMQP_POLICY=/usr/sbin/policy-rc.d
_AMQP_MARK="# wirebeat: keep rabbitmq-server from starting during its installation"
if ! dpkg-query -W -f='${Status}' rabbitmq-server 2>/dev/null | grep -q "install ok installed" &&
  [ ! -e "$_AMQP_POLICY" ] && [ -w "$(dirname "$_AMQP_POLICY")" ]; then
  printf '#!/bin/sh\n%s\n[ "$1" = rabbitmq-server ] && exit 101\nexit 0\n' "$_AMQP_MARK" > "$_AMQP_POLICY"
  chmod 755 "$_AMQP_POLICY"
fi

setup_amqp() {
  if [ -f "$_AMQP_POLICY" ] && grep -qF "$_AMQP_MARK" "$_AMQP_POLICY"; then
    rm -f "$_AMQP_POLICY"
  fi
  if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet rabbitmq-server 2>/dev/null; then
    systemctl stop rabbitmq-server || true
    systemctl disable rabbitmq-server >/dev/null 2>&1 || true
  elif [ -s /var/run/rabbitmq/pid ] && kill -0 "$(cat /var/run/rabbitmq/pid)" 2>/dev/null; then
    # (not "rabbitmq-server status": rabbitmqctl would leave an epmd running on 4369)
    /etc/init.d/rabbitmq-server stop || true
  fi
  if [ ! -x /usr/lib/rabbitmq/bin/rabbitmq-server ]; then
    echo "rabbitmq-server is not installed" >&2
    return 1
  fi
  python3 -c 'import pika' || { echo "pika is not installed (pyproject test extra)" >&2; return 1; }
}
SETUP_STEPS+=(setup_amqp)
