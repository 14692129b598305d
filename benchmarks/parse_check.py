"""Check that commands' arguments parse, without running them: what ``gpu_run.sh --dry-run`` does.

    python -m benchmarks.parse_check "python3 -m benchmarks.run --device cuda --tag a" \
        "python3 examples/pix2pix_mri2ct/run.py --data phantom --quick"

Each argument is one command as a shell would split it: ``PYTHON -m MODULE ARGS`` or ``PYTHON FILE.py
ARGS``. The module or file runs as ``__main__`` with ``sys.argv`` set to ``ARGS`` until its first
``ArgumentParser.parse_args`` returns; then it stops. A command whose arguments do not parse (argparse
exits with status 2), whose module cannot be imported, or that never parses arguments is reported.
Prints one line per command; exits 1 if any failed.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import runpy
import shlex
import sys
from collections.abc import Iterator, Sequence
from typing import Any


class _Parsed(Exception):
    """Raised by the patched ``parse_args`` once the command's arguments have parsed."""


@contextlib.contextmanager
def _stop_after_parsing() -> Iterator[None]:
    original = argparse.ArgumentParser.parse_args

    def parse_args(self: argparse.ArgumentParser, *args: Any, **kwargs: Any) -> Any:
        original(self, *args, **kwargs)
        raise _Parsed

    argparse.ArgumentParser.parse_args = parse_args  # type: ignore[method-assign]
    try:
        yield
    finally:
        argparse.ArgumentParser.parse_args = original  # type: ignore[method-assign]


def check(command: str) -> tuple[bool, str]:
    """Whether ``command``'s arguments parse, and what it said (the last line of argparse's error).

    Example:
        >>> check("python3 -m benchmarks.parse_check --help")[0]
        True
        >>> ok, said = check("python3 -m json.tool --no-such-flag")
        >>> ok, "unrecognized arguments" in said
        (False, True)
    """
    words = shlex.split(command)
    if len(words) >= 3 and words[1] == "-m":
        target, argv, run = words[2], words[3:], runpy.run_module
    elif len(words) >= 2 and words[1].endswith(".py"):
        target, argv, run = words[1], words[2:], runpy.run_path
    else:
        return False, "expected 'PYTHON -m MODULE ARGS' or 'PYTHON FILE.py ARGS'"
    saved_argv, saved_path = sys.argv, list(sys.path)
    sys.argv = [target, *argv]
    err = io.StringIO()
    try:
        with (
            _stop_after_parsing(),
            contextlib.redirect_stderr(err),
            contextlib.redirect_stdout(io.StringIO()),
        ):
            run(target, run_name="__main__")
    except _Parsed:
        return True, "arguments parse"
    except SystemExit as exc:
        if exc.code in (0, None) and "--help" in argv:
            return True, "help"
        lines = err.getvalue().strip().splitlines()
        return False, lines[-1] if lines else f"exit status {exc.code}"
    except Exception as exc:  # an import error, or a command that fails before parsing
        return False, f"{type(exc).__name__}: {exc}"
    finally:
        sys.argv = saved_argv
        sys.path[:] = saved_path
    return False, "finished without parsing any arguments"


def main(argv: Sequence[str] | None = None) -> int:
    """Check every command given; exit status 1 if any does not parse."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("commands", nargs="+", help="commands, one per argument")
    args = parser.parse_args(argv)
    failed = 0
    for command in args.commands:
        ok, said = check(command)
        failed += not ok
        print(f"{'ok  ' if ok else 'FAIL'} {command}" + ("" if ok else f"\n     {said}"))
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
