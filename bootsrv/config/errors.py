"""The two errors the configuration layer raises; both are one line an admin can act on."""


class ConfigError(Exception):
    """One line: file, key, what was expected."""


class StartupError(Exception):
    """One line telling the admin why the appliance cannot start (or apply a change)."""
