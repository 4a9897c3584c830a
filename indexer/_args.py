"""argparse with the errors people need. Standard library only: every ``musicrec`` command builds it.

- An unknown option is reported by the (sub)command it was given to, with that command's usage and
  the closest known option ("did you mean --max-per-artist?"), not by ``musicrec`` with the
  top-level usage (argparse's default: subcommands hand unknown arguments up to their parent).
- An invalid choice (a misspelled command or ``--index`` kind) gets the closest choice too.

And the exit codes the commands share.
"""

from __future__ import annotations

import argparse
import difflib
from collections.abc import Sequence
from typing import Any

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT, EXIT_INTERNAL = 0, 1, 2, 70


class Parser(argparse.ArgumentParser):
    is_subcommand = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # a prefix of a flag is not taken for it: `demo --track 100` ran as --tracks 100 and repointed
        # bundles/current; an unknown flag is named with its nearest ones instead (_unrecognized)
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def add_subparsers(self, **kwargs: Any) -> Any:
        action = super().add_subparsers(**kwargs)
        add_parser = action.add_parser

        def add_subcommand(name: str, **kw: Any) -> Parser:
            parser = add_parser(name, **kw)
            parser.is_subcommand = True
            return parser

        action.add_parser = add_subcommand
        return action

    def parse_known_args(self, args: Sequence[str] | None = None,  # type: ignore[override]
                         namespace: argparse.Namespace | None = None) -> tuple[argparse.Namespace, list[str]]:
        namespace, extras = super().parse_known_args(args, namespace)
        if extras and self.is_subcommand:
            self._unrecognized(extras)
        return namespace, extras

    def parse_args(self, args: Sequence[str] | None = None,  # type: ignore[override]
                   namespace: argparse.Namespace | None = None) -> argparse.Namespace:
        namespace, extras = self.parse_known_args(args, namespace)
        if extras:
            self._unrecognized(extras)
        return namespace

    def _unrecognized(self, extras: list[str]) -> None:
        message = f"unrecognized arguments: {' '.join(extras)}"
        options = [o for o in self._option_string_actions if o.startswith("--")]
        for arg in extras:
            if arg.startswith("--"):
                close = difflib.get_close_matches(arg.partition("=")[0], options, n=1, cutoff=0.6)
                if close:
                    message += f" (did you mean {close[0]}?)"
                    break
        self.error(message)

    def _check_value(self, action: argparse.Action, value: Any) -> None:
        if action.choices is not None and value not in action.choices and isinstance(value, str):
            choices = [str(c) for c in action.choices]
            close = difflib.get_close_matches(value, choices, n=1, cutoff=0.6)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise argparse.ArgumentError(action, f"invalid choice: {value!r} (choose from {', '.join(choices)}){hint}")
        super()._check_value(action, value)
