"""Command line: `bootsrv serve --config FILE`, `bootsrv check-config FILE`.

Exit codes: 0 ok, 1 failure, 2 usage. Mistakes print one line, never a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

from bootsrv import __version__
from bootsrv.app import StartupError, serve
from bootsrv.config import ConfigError, load_config


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bootsrv", description="Boot-and-backup appliance: iSCSI target, "
                                     "network boot and snapshots in one program.")
    parser.add_argument("--version", action="version", version=f"bootsrv {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    run = commands.add_parser("serve", help="run the appliance in the foreground (logs to stderr)")
    run.add_argument("--config", "-c", required=True, metavar="FILE", help="TOML configuration file")
    check = commands.add_parser("check-config", help="validate a configuration file without serving")
    check.add_argument("file", metavar="FILE")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "check-config":
            config = load_config(args.file)
            print(f"{args.file}: ok ({len(config.disks)} disks, {len(config.targets)} targets)")
            return 0
        config = load_config(args.config)
        logging.basicConfig(level=config.server.log_level.upper(), stream=sys.stderr,
                            format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        asyncio.run(serve(config))
        return 0
    except (ConfigError, StartupError) as exc:
        print(f"bootsrv: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main())
