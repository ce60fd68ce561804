"""Whether the configuration file shows its secrets to other users (a warning, not an error)."""

from __future__ import annotations

from bootsrv.config.model import Config


def exposed_secrets(config: Config) -> str | None:
    """A warning when the file holds secrets (CHAP, the web token) and users other
    than its owner may read it; None when all is well."""
    kinds = []
    if any(t.chap or t.mutual_chap for t in config.targets) or any(c.chap for c in config.clients):
        kinds.append("CHAP secrets")
    if config.web.token:
        kinds.append("the web token")
    try:
        mode = config.path.stat().st_mode
    except OSError:
        return None
    if not kinds or not mode & 0o077:
        return None
    return (f"{config.path} holds {' and '.join(kinds)} but is readable by others (mode {mode & 0o777:o}): "
            f"chmod 600 {config.path}")
