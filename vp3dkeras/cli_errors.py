"""How the command lines end: one line for a bad input, a documented exit code.

Exit codes of every `python -m vp3dkeras.*` command:
    0  done
    1  ran, but the result is not usable (e.g. training stopped on a NaN loss)
    2  bad input or usage: a missing or corrupt file, a NaN in data, a wrong option; the one
       line printed names the file and the problem
"""
from __future__ import annotations

import re
import sys
from typing import Callable, Optional, Sequence

EXIT_OK, EXIT_UNUSABLE, EXIT_BAD_INPUT = 0, 1, 2


class UsageError(SystemExit):
    """A wrong option or an input that is not there: `run_main` prints ``error: <message>``
    and exits 2 (a `SystemExit`, so code calling `main` directly stops too)."""

    def __init__(self, message: str):
        super().__init__(EXIT_BAD_INPUT)
        self.message = message

    def __str__(self):
        return self.message


def one_line(error: BaseException) -> str:
    text = str(error).strip() or type(error).__name__
    lines = text.splitlines()
    return lines[0] + (" ..." if len(lines) > 1 else "")


#: A bad-input error raised inside a `tf.data` generator (a record read on demand, such as a
#: shard whose bytes do not match its index): TensorFlow re-raises it as an
#: `InvalidArgumentError` whose text holds the original exception's last line.
_PIPELINE_INPUT_ERROR = re.compile(
    r"^(?:[\w.]+\.)?(?:ValueError|RecordError|OSError|FileNotFoundError|PermissionError): "
    r"(.+)$", re.MULTILINE)


def pipeline_input_error(error: BaseException) -> Optional[str]:
    """The message of the bad-input error inside TensorFlow's error `error` from an input
    pipeline, or None (another error: a bug, kept with its traceback)."""
    if not type(error).__module__.startswith("tensorflow") or "PyFunc" not in str(error):
        return None
    match = _PIPELINE_INPUT_ERROR.search(str(error))
    return match[1].strip() if match else None


def run_main(main: Callable[[Optional[Sequence[str]]], int],
             argv: Optional[Sequence[str]] = None) -> int:
    """Calls `main(argv)`; a `ValueError`, `OSError` or unknown-name `LookupError` (bad
    input, by the project's convention), also one raised inside a `tf.data` pipeline
    (`pipeline_input_error`), becomes ``error: <message>`` on stderr and exit 2.
    `KeyError`/`IndexError` are treated as bugs and keep their traceback."""
    try:
        return main(argv)
    except UsageError as error:
        print(f"error: {error.message}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except (KeyError, IndexError):
        raise
    except (ValueError, OSError, LookupError) as error:
        print(f"error: {one_line(error)}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except Exception as error:
        message = pipeline_input_error(error)
        if message is None:
            raise
        print(f"error: {message}", file=sys.stderr)
        return EXIT_BAD_INPUT
