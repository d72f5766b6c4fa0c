"""Import TensorFlow without its start-up log lines; the command lines import this first.

TensorFlow's C++ start-up (absl) writes lines such as ``I0000 ... cudart_stub.cc:31] Could
not find cuda drivers`` and, on a machine without a GPU, ``E0000 ... failed call to cuInit``
straight to file descriptor 2 before `TF_CPP_MIN_LOG_LEVEL` is read, so the variable alone
does not silence them. This module imports TensorFlow and lists its devices (which is when
CUDA is probed) with descriptor 2 pointed at a temporary file, then writes back every line
that is not start-up noise: real errors still reach the user.

`import vp3dkeras.quiet_tf` is idempotent and costs nothing once TensorFlow is imported.
"""
from __future__ import annotations

import contextlib
import os
import re
import sys
import tempfile

#: Lines dropped: absl's preamble, its info/warning lines, the cuInit probe failure on a
#: machine without a GPU, and the continuation line of the CPU-feature notice.
NOISE = re.compile(
    r"^(WARNING: All log messages before absl::InitializeLog\(\) is called"
    r"|[IW]\d{4} \d\d:\d\d:\d+\.\d+\s+\d+ \S+:\d+\]"
    r"|E\d{4} \d\d:\d\d:\d+\.\d+\s+\d+ \S+:\d+\] failed call to cuInit"
    r"|To enable the following instructions: )")


@contextlib.contextmanager
def filtered_stderr(pattern=NOISE):
    """Runs the block with file descriptor 2 captured; afterwards writes the captured lines
    that do not match `pattern` back to stderr."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as capture:
        os.dup2(capture.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            kept = [line for line in capture.read().decode("utf-8", "replace").splitlines(True)
                    if not pattern.match(line)]
            if kept:
                sys.stderr.write("".join(kept))
                sys.stderr.flush()


def import_tensorflow():
    """TensorFlow, imported (with its devices probed) without the start-up noise."""
    if "tensorflow" in sys.modules and getattr(import_tensorflow, "_done", False):
        return sys.modules["tensorflow"]
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    with filtered_stderr():
        import tensorflow as tf

        tf.config.list_physical_devices()
    import_tensorflow._done = True
    return tf


import_tensorflow()
