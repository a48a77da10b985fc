"""Version strings."""

from importlib.metadata import PackageNotFoundError, version

try:
    VERSION = version("wirebeat")
except PackageNotFoundError:  # running from a checkout without installing
    VERSION = "0.1.0"

#: ECS version of the events (as Packetbeat 8.x reports it).
ECS_VERSION = "8.0.0"
#: The Packetbeat release whose behaviour and fields this build follows.
PACKETBEAT_COMPAT = "8.17"
