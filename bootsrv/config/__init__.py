"""The one configuration model: TOML -> validated, immutable objects.

Every service reads these objects, never the TOML. Errors name the file, the key
and what was expected, in one line, so an admin can fix them without a traceback.
Relative paths are relative to the configuration file's folder.

The package, by concern: `model` (the frozen dataclasses and their defaults),
`modes` (a StrEnum for each closed set of words), `reader` (the typed table reader
behind every error message), `sections` (one parser per table), `crosschecks`
(rules relating tables), `names` (accepted names and the client IQN rule),
`exposure` (the readable-secrets warning), `loader` (the entry points). Importing it imports nothing
heavy (no APScheduler, no store stack); tests/bootsrv/config pins that. Everything
other code used from the old single module is importable from here.
"""

from bootsrv.config.errors import ConfigError, StartupError
from bootsrv.config.exposure import exposed_secrets
from bootsrv.config.loader import load_config, parse_config
from bootsrv.config.model import (DEFAULT_BASE_IQN, ChapConfig, ClientConfig, Config, DhcpConfig, DiskConfig,
                                  DnsConfig, IscsiConfig, ImageConfig, Portal, ServerConfig, SnapshotsConfig,
                                  TargetConfig, WebConfig)
from bootsrv.config.modes import DhcpMode, Digests, ExportMode, LogLevel, UnknownClients
from bootsrv.config.names import client_target_iqn, valid_iscsi_name
from bootsrv.config.reader import parse_duration, parse_size

__all__ = [
    "DEFAULT_BASE_IQN", "ChapConfig", "ClientConfig", "Config", "ConfigError", "DhcpConfig", "DhcpMode",
    "Digests", "DiskConfig", "DnsConfig", "ExportMode", "ImageConfig", "IscsiConfig", "LogLevel", "Portal",
    "ServerConfig", "SnapshotsConfig", "StartupError", "TargetConfig", "UnknownClients", "WebConfig",
    "client_target_iqn", "exposed_secrets", "load_config", "parse_config", "parse_duration", "parse_size",
    "valid_iscsi_name",
]
