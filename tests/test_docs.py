"""The documents stay true: every command and option is in README.md, and --help names
what a user cannot otherwise guess (the bare explorer mode, `open`, the keymap file)."""

from __future__ import annotations

import argparse
from pathlib import Path

from sideeye_tui import cli

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()


def _options(parser: argparse.ArgumentParser) -> list[str]:
    return [
        o
        for action in parser._actions
        if action.help != argparse.SUPPRESS
        for o in action.option_strings
        if o.startswith("--") and o != "--help"
    ]


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def test_every_command_and_option_is_in_the_readme() -> None:
    missing = []
    for name, sub in _subparsers(cli.build_parser()).items():
        if f"sideeye-tui {name}" not in README:
            missing.append(f"sideeye-tui {name}")
        missing += [f"{name} {o}" for o in _options(sub) if o not in README]
    missing += [f"explorer {o}" for o in _options(cli.explorer_parser()) if f"{o}" not in README]
    assert missing == []


def test_help_names_the_explorer_open_and_the_keymap() -> None:
    text = cli.build_parser().format_help()
    for words in ("[PID ...]", "sideeye-tui open", "keymap.toml"):
        assert words in " ".join(text.split()), words
