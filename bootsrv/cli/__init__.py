"""Command line: `bootsrv serve --config FILE`, `bootsrv check-config FILE`, and the
admin commands (disk, target, client, status, snapshot, schedule) that edit the
configuration or ask the running server (bootsrv.ops, over the admin socket).

Exit codes: 0 ok, 1 failure, 2 usage. Mistakes print one line, never a traceback;
an unexpected error is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import sys

from bootsrv import __version__
from bootsrv.cli.commands import MODULES
from bootsrv.cli.common import Parser
from bootsrv.config import ConfigError, StartupError
from bootsrv.disktool import DiskToolError
from bootsrv.ops import OperationFailed

# What a user can cause and fix: one line each.
USER_ERRORS = (ConfigError, StartupError, DiskToolError, ConnectionError, OperationFailed)


def parser() -> argparse.ArgumentParser:
    top = Parser(prog="bootsrv", description="Boot-and-backup appliance: iSCSI target, "
                 "network boot and snapshots in one program.")
    top.add_argument("--version", action="version", version=f"bootsrv {__version__}")
    commands = top.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=Parser)
    for module in MODULES:
        module.register(commands)
    return top


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return int(args.run(args))
    except USER_ERRORS as exc:
        print(f"bootsrv: {exc}", file=sys.stderr)
        return 1
    except FileNotFoundError as exc:
        print(f"bootsrv: {exc.filename}: no such file", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main())
