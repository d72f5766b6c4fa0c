"""The bad-input and fault corpus's scoring, shared by the tests and
`experiments/robustness_report.py`.

A bad input is tried by calling an action; the outcome is one of
    "named"   it raised (or a command exited non-zero with) a one-line message naming the
              input (a file name or a key) - what we want;
    "silent"  it finished without complaint - a wrong result with no error;
    "crash"   it failed some other way: a traceback, or a message that does not name the
              input.
"""
from __future__ import annotations

import dataclasses
import subprocess
import sys
from typing import Callable, Iterable, List, Optional

NAMED, SILENT, CRASH = "named", "silent", "crash"
# Exceptions the command lines turn into one line (`vp3dkeras.cli_errors.run_main`,
# `synth.motion.MocapError` is a ValueError).
USER_ERRORS = (ValueError, OSError, LookupError)


@dataclasses.dataclass
class Outcome:
    kind: str
    message: str

    def __str__(self):
        return f"{self.kind}: {self.message}"


def try_call(action: Callable[[], object], names: Iterable[str]) -> Outcome:
    """Runs `action()` in-process; `names` are strings the error message must contain one
    of (the file or key at fault)."""
    names = [str(n) for n in names]
    try:
        action()
    except (KeyError, IndexError) as error:
        return Outcome(CRASH, f"{type(error).__name__}: {error}")
    except USER_ERRORS as error:
        text = str(error)
        if "\n" not in text.strip() and any(n in text for n in names):
            return Outcome(NAMED, text)
        return Outcome(CRASH, f"{type(error).__name__} not naming {names}: {text[:300]}")
    except BaseException as error:  # noqa: BLE001  (a crash is what is being measured)
        return Outcome(CRASH, f"{type(error).__name__}: {str(error)[:300]}")
    return Outcome(SILENT, "no error")


def try_command(argv: List[str], names: Iterable[str], cwd=None, env=None,
                timeout: float = 300) -> Outcome:
    """Runs `python -m ...argv` as a user would; named = non-zero exit and a short stderr
    (at most 3 lines, no traceback) whose lines name one of `names`."""
    names = [str(n) for n in names]
    result = subprocess.run([sys.executable, "-m", *argv], capture_output=True, text=True,
                            cwd=cwd, env=env, timeout=timeout)
    err = [line for line in result.stderr.splitlines() if line.strip()]
    if result.returncode == 0:
        return Outcome(SILENT, f"exit 0; {result.stdout.strip()[-200:]}")
    text = "\n".join(err)
    if "Traceback" in text or len(err) > 3 or not any(n in text for n in names):
        return Outcome(CRASH, f"exit {result.returncode}: {text[-400:]}")
    return Outcome(NAMED, f"exit {result.returncode}: {text}")


def tally(outcomes: Iterable[Outcome]) -> dict:
    outcomes = list(outcomes)
    return {"tried": len(outcomes), **{k: sum(o.kind == k for o in outcomes)
                                       for k in (NAMED, SILENT, CRASH)}}


def try_main(main: Callable, argv: List[str], names: Iterable[str], capsys) -> Outcome:
    """Runs a command line's `main` in-process through `run_main` (as `python -m` does);
    named = non-zero exit with one stderr line naming one of `names`."""
    try:
        from vp3dkeras.cli_errors import run_main
    except ImportError:  # code from before `run_main`: `python -m` called `main` directly
        def run_main(main, argv):
            return main(argv)

    names = [str(n) for n in names]
    capsys.readouterr()
    try:
        code = run_main(main, argv)
    except BaseException as error:  # noqa: BLE001
        return Outcome(CRASH, f"{type(error).__name__}: {str(error)[:300]}")
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    if code == 0:
        return Outcome(SILENT, "exit 0")
    text = "\n".join(err)
    if len(err) == 1 and any(n in text for n in names):
        return Outcome(NAMED, f"exit {code}: {text}")
    return Outcome(CRASH, f"exit {code}: {text[-400:]}")
