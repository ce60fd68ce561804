"""bootsrv.1 in man(7) roff, rendered from the CLI's argparse tree (argtree.py).

Why our own renderer and not help2man: help2man runs `bootsrv --help` once and documents only
the top level, while bootsrv's commands are two levels deep (`bootsrv snapshot export ...`)
and each has its own options. The tree gives every command its usage, help and options, and
it is the same tree the bash completion comes from. It needs no extra build dependency."""

from __future__ import annotations

import time

from argtree import Command, Option

# Sections after the commands: what the package installs and how the program behaves.
TAIL = r"""
.SH FILES
.TP
.I /etc/bootsrv/bootsrv.toml
The configuration the commands use unless \fB\-\-config\fR or \fBBOOTSRV_CONFIG\fR names another.
.TP
.I /var/lib/bootsrv
State directory of the packaged configuration: disks, snapshots, leases and the admin socket.
.TP
.I /usr/share/doc/bootsrv/README.md.gz
The administrator's guide: every configuration section, the CLI, the dashboard.
.SH ENVIRONMENT
.TP
.B BOOTSRV_CONFIG
The configuration file of the running server, for commands that ask it.
.SH "EXIT STATUS"
0 on success, 1 when the command failed (one line on standard error says why),
2 for a usage mistake.
.SH "SEE ALSO"
.BR systemctl (1),
.BR iscsiadm (8)
"""


def escape(text: str) -> str:
    """Text safe in roff: backslashes and minus signs escaped, no line starting a request."""
    text = text.replace("\\", "\\e").replace("-", "\\-")
    return "\n".join("\\&" + line if line[:1] in (".", "'") else line for line in text.splitlines())


def _option_item(option: Option) -> str:
    names = ", ".join(f"\\fB{escape(flag)}\\fR" for flag in option.flags) or f"\\fI{escape(option.metavar or '')}\\fR"
    if option.flags and option.metavar:
        names += f" \\fI{escape(option.metavar)}\\fR"
    return f".TP\n{names}\n{escape(option.help) if option.help else ''}".rstrip() + "\n"


def _command_section(command: Command) -> str:
    out = [f'.SS "{escape(" ".join(("bootsrv",) + command.path))}"\n']
    out.append(f"\\fB{escape(command.usage)}\\fR\n")
    out.append(".PP\n")
    out.append(escape(command.description or command.help) + "\n")
    for positional in command.positionals:
        if positional.help:
            out.append(_option_item(positional))
    for option in command.options:
        if option.flags != ("-h", "--help"):  # every command has it; said once at the top
            out.append(_option_item(option))
    return "".join(out)


def manpage(tree: Command, version: str, date: float) -> str:
    day = time.strftime("%Y-%m-%d", time.gmtime(date))
    out = [f'.TH BOOTSRV 1 "{day}" "bootsrv {escape(version)}" "User Commands"\n',
           # Left-aligned, no hyphenation: usage lines full of option names read badly justified.
           ".ad l\n.nh\n",
           ".SH NAME\nbootsrv \\- " + escape(tree.description[:1].lower() + tree.description[1:].rstrip(".")) + "\n",
           ".SH SYNOPSIS\n", f"\\fB{escape(tree.usage)}\\fR\n",
           ".SH DESCRIPTION\n", escape(tree.description) + "\n.PP\n",
           "Every command accepts \\fB\\-h\\fR, \\fB\\-\\-help\\fR: its usage and options, as listed below.\n"]
    for option in tree.options:
        if option.flags != ("-h", "--help"):
            out.append(_option_item(option))
    out.append(".SH COMMANDS\n")
    for command in tree.walk():
        if command.path and not command.commands:
            out.append(_command_section(command))
        elif command.path:  # a group (`bootsrv disk`): its line, then its actions
            out.append(f'.SS "{escape(" ".join(("bootsrv",) + command.path))}"\n{escape(command.help)}\n')
    out.append(TAIL.lstrip("\n"))
    return "".join(out)
