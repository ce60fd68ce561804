"""`bootsrv serve --config FILE` and `bootsrv check-config FILE`."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from typing import Any

from bootsrv.config import exposed_secrets, load_config
from bootsrv.runtime.serve import serve


def register(commands: Any) -> None:
    run = commands.add_parser("serve", help="run the appliance in the foreground (logs to stderr)")
    run.add_argument("--config", "-c", required=True, metavar="FILE", help="TOML configuration file")
    run.set_defaults(run=_serve)
    check = commands.add_parser("check-config", help="validate a configuration file without serving")
    check.add_argument("file", metavar="FILE")
    check.set_defaults(run=_check)


def _check(args: argparse.Namespace) -> int:
    config = load_config(args.file)
    print(f"{args.file}: ok ({len(config.disks)} disks, {len(config.targets)} targets, "
          f"{len(config.clients)} clients, DHCP {config.dhcp.mode})")
    warning = exposed_secrets(config)
    if warning:
        print(f"warning: {warning}", file=sys.stderr)
    return 0


def _serve(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    logging.basicConfig(level=config.server.log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    warning = exposed_secrets(config)
    if warning:
        logging.getLogger("bootsrv").warning("%s", warning)
    asyncio.run(serve(config))
    return 0
