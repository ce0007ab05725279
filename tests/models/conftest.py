"""No servers in this tier (see helpers.no_network)."""
from helpers.no_network import no_network  # noqa: F401  (an autouse fixture: importing it applies it)
