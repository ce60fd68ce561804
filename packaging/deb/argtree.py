"""The CLI as data: bootsrv's argparse tree walked into commands, options and sub-commands.
The man page and the bash completion are both rendered from this, so neither can drift from
what `bootsrv --help` says."""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Option:
    flags: tuple[str, ...]  # "--config", "-c"
    metavar: str | None  # None: a flag that takes no value
    choices: tuple[str, ...]
    help: str


@dataclass(frozen=True)
class Command:
    path: tuple[str, ...]  # () is `bootsrv` itself, ("disk", "create") is `bootsrv disk create`
    help: str  # the one line the parent's listing shows
    description: str
    usage: str  # argparse's own usage line, unwrapped, without "usage: "
    options: tuple[Option, ...]
    positionals: tuple[Option, ...]
    commands: tuple[Command, ...] = field(default=())

    def walk(self):
        yield self
        for sub in self.commands:
            yield from sub.walk()


def _expanded_help(parser: argparse.ArgumentParser, action: argparse.Action) -> str:
    # argparse expands %(default)s and friends only while formatting; do the same here.
    if not action.help or action.help == argparse.SUPPRESS:
        return ""
    return parser._get_formatter()._expand_help(action)  # noqa: SLF001 (argparse has no public API for it)


def _option(parser: argparse.ArgumentParser, action: argparse.Action) -> Option:
    takes_value = action.nargs != 0
    metavar = None
    if takes_value:
        default = action.dest.upper() if action.option_strings else action.dest  # as argparse names them
        metavar = action.metavar if isinstance(action.metavar, str) else default
        if action.choices and action.metavar is None:
            metavar = "{" + ",".join(map(str, action.choices)) + "}"
    choices = tuple(map(str, action.choices)) if action.choices else ()
    return Option(tuple(action.option_strings), metavar, choices, _expanded_help(parser, action))


def _usage(parser: argparse.ArgumentParser) -> str:
    # Format with a very wide formatter so the usage is one line; argparse wraps at $COLUMNS.
    wide = argparse.HelpFormatter(parser.prog, width=100_000)
    wide.add_usage(parser.usage, parser._actions, parser._mutually_exclusive_groups)  # noqa: SLF001
    return wide.format_help().strip().removeprefix("usage: ")


def command_tree(parser: argparse.ArgumentParser, path: tuple[str, ...] = (), help: str = "") -> Command:
    options: list[Option] = []
    positionals: list[Option] = []
    commands: list[Command] = []
    for action in parser._actions:  # noqa: SLF001
        if action.help == argparse.SUPPRESS:
            continue
        if isinstance(action, argparse._SubParsersAction):  # noqa: SLF001
            helps = {choice.dest: choice.help or "" for choice in action._choices_actions}  # noqa: SLF001
            for name, sub in action.choices.items():
                if name in helps:  # aliases have no entry of their own
                    commands.append(command_tree(sub, path + (name,), helps[name]))
        elif action.option_strings:
            options.append(_option(parser, action))
        else:
            positionals.append(_option(parser, action))
    return Command(path, help, parser.description or "", _usage(parser), tuple(options), tuple(positionals),
                   tuple(commands))


def bootsrv_tree() -> Command:
    from bootsrv.cli import parser
    return command_tree(parser())
