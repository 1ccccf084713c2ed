"""What every command-line entry point shares: one-line argparse errors and numeric option validation.

* :class:`ArgumentParser` -- ``argparse.ArgumentParser`` whose ``error()`` prints exactly one line,
  ``error: <message> (see <prog> --help)``, and exits 2 (argparse prints the whole usage block first).
  :func:`parse_args` gives an existing parser the same behaviour: ``args = parse_args(get_args_parser(), argv)``.
* :func:`check_number` / :func:`check_options` -- the one numeric-option validator: finite (NaN and inf would
  silently switch a gate off, ``x > nan`` is always false) and inside a stated range. Raises ConfigError,
  which every ``main()`` prints as its one ``error:`` line (exit 2).
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Mapping
from dataclasses import dataclass

from common.errors import ConfigError


def _one_line_error(parser: argparse.ArgumentParser, message: str):
    msg = " ".join(str(message).split())
    parser.exit(2, f"error: {msg} (see {parser.prog} --help)\n")


class ArgumentParser(argparse.ArgumentParser):
    """argparse with a one-line ``error:`` (exit 2) instead of usage + error."""

    def error(self, message: str):  # noqa: D102 - argparse API
        _one_line_error(self, message)


def one_line_errors(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Make ``parser`` (and its sub-parsers, created later or already) report errors as one line."""
    parser.error = lambda message: _one_line_error(parser, message)  # type: ignore[method-assign]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                one_line_errors(sub)
    return parser


def parse_args(parser: argparse.ArgumentParser, argv=None) -> argparse.Namespace:
    """``parser.parse_args(argv)`` with one-line errors (exit 2)."""
    return one_line_errors(parser).parse_args(argv)


@dataclass(frozen=True)
class Range:
    """Allowed values of a numeric option: ``lo <= v <= hi`` (``lo_open``/``hi_open``: strict), integers only
    when ``integer``; ``None`` values pass when ``optional``."""

    lo: float = -math.inf
    hi: float = math.inf
    integer: bool = False
    lo_open: bool = False
    hi_open: bool = False
    optional: bool = True

    def describe(self) -> str:
        kind = "an integer" if self.integer else "a finite number"
        fmt = (lambda v: str(int(v))) if self.integer else (lambda v: f"{v:g}")
        if self.lo == -math.inf and self.hi == math.inf:
            return kind
        if self.hi == math.inf:
            return f"{kind} {'>' if self.lo_open else '>='} {fmt(self.lo)}"
        if self.lo == -math.inf:
            return f"{kind} {'<' if self.hi_open else '<='} {fmt(self.hi)}"
        lo, hi = "(" if self.lo_open else "[", ")" if self.hi_open else "]"
        return f"{kind} in {lo}{fmt(self.lo)}, {fmt(self.hi)}{hi}"


def check_number(name: str, value, rng: Range) -> None:
    """ConfigError unless ``value`` is a finite number inside ``rng`` (a list/tuple: every element)."""
    if value is None and rng.optional:
        return
    if isinstance(value, (list, tuple)):
        for v in value:
            check_number(name, v, rng)
        return
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if ok and rng.integer:
        ok = isinstance(value, int) or (math.isfinite(value) and float(value).is_integer())
    if ok:
        ok = math.isfinite(value)
    if ok:
        above = value > rng.lo if rng.lo_open else value >= rng.lo
        below = value < rng.hi if rng.hi_open else value <= rng.hi
        ok = above and below
    if not ok:
        raise ConfigError(f"{name} must be {rng.describe()}, got {value!r}")


def check_options(args, ranges: Mapping[str, Range]) -> None:
    """Check every ``args.<dest>`` named in ``ranges`` (the error names the ``--flag``). ``args``: a Namespace
    or a mapping. Unknown dests are skipped, so one table can serve parsers with optional flags."""
    get = args.get if isinstance(args, Mapping) else (lambda k, d=None: getattr(args, k, d))
    for dest, rng in ranges.items():
        sentinel = object()
        v = get(dest, sentinel)
        if v is sentinel:
            continue
        check_number("--" + dest.replace("_", "-"), v, rng)


def warn(message: str) -> None:
    """One ``warning: ...`` line on stderr (the CLIs' only other kind of stderr line)."""
    print(f"warning: {' '.join(str(message).split())}", file=sys.stderr)
