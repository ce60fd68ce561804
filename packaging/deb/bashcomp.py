"""The bash completion of bootsrv, rendered from the CLI's argparse tree (argtree.py): tables
of sub-commands, options and option choices per command path, and one small function that
walks the words typed so far. Regenerated with every package, so it follows the CLI."""

from __future__ import annotations

import shlex

from argtree import Command

FUNCTION = r"""
_bootsrv() {
    local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]}
    local path=bootsrv word i
    # Which command the words so far name (`snapshot export`), skipping options and their values.
    for ((i = 1; i < COMP_CWORD; i++)); do
        word=${COMP_WORDS[i]}
        if [[ " ${_bootsrv_valued[$path]} " == *" $word "* ]]; then
            ((i++))
        elif [[ " ${_bootsrv_commands[$path]} " == *" $word "* ]]; then
            path="$path $word"
        fi
    done
    if [[ " ${_bootsrv_valued[$path]} " == *" $prev "* ]]; then
        # The value of an option: its choices if it has any, else the shell's default (files).
        COMPREPLY=($(compgen -W "${_bootsrv_choices[$path $prev]}" -- "$cur"))
    elif [[ $cur == -* ]]; then
        COMPREPLY=($(compgen -W "${_bootsrv_options[$path]}" -- "$cur"))
    else
        COMPREPLY=($(compgen -W "${_bootsrv_commands[$path]}" -- "$cur"))
    fi
}
complete -o default -F _bootsrv bootsrv
"""


def _table(name: str, rows: dict[str, str]) -> str:
    lines = [f"declare -gA {name}=("]
    lines += [f"    [{shlex.quote(key)}]={shlex.quote(value)}" for key, value in rows.items()]
    return "\n".join(lines + [")"]) + "\n"


def completion(tree: Command, version: str) -> str:
    commands: dict[str, str] = {}
    options: dict[str, str] = {}
    valued: dict[str, str] = {}
    choices: dict[str, str] = {}
    for command in tree.walk():
        key = " ".join(("bootsrv",) + command.path)  # bash's associative arrays refuse an empty key
        commands[key] = " ".join(sub.path[-1] for sub in command.commands)
        options[key] = " ".join(flag for option in command.options for flag in option.flags)
        valued[key] = " ".join(flag for option in command.options if option.metavar for flag in option.flags)
        for option in command.options:
            for flag in option.flags if option.choices else ():
                choices[f"{key} {flag}"] = " ".join(option.choices)
    header = (f"# bash completion for bootsrv {version}, generated from its argparse tree by\n"
              "# packaging/deb/bashcomp.py: edit the CLI, not this file.\n")
    tables = "".join(_table(name, rows) for name, rows in (("_bootsrv_commands", commands),
                                                            ("_bootsrv_options", options),
                                                            ("_bootsrv_valued", valued),
                                                            ("_bootsrv_choices", choices)))
    return header + tables + FUNCTION
