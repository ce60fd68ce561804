"""The commands, one module each: its parsers and the functions they run, side by side.
Each module's `register(commands)` adds its parsers with `set_defaults(run=...)`."""

from bootsrv.cli.commands import client, disk, image, schedule, serve, snapshot, status, target

MODULES = (serve, disk, image, target, client, status, snapshot, schedule)  # the order `bootsrv --help` lists them in

from bootsrv.cli.commands import task  # noqa: E402  (its own lines: the parts of issue 20 each add commands)

MODULES = MODULES + (task,)
