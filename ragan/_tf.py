"""Quiet, lazy TensorFlow import.

TensorFlow prints CUDA-probing errors and oneDNN notices at import on machines without a GPU.
They frighten users and say nothing actionable, so ragan silences the C++ logger and Python's
``absl`` logger before the first import. Users who want the noise back set
``TF_CPP_MIN_LOG_LEVEL=0`` themselves: an explicit value is respected.
"""

from __future__ import annotations

import logging
import os
import sys

_QUIET_ENV = {
    "TF_CPP_MIN_LOG_LEVEL": "3",  # C++ INFO/WARNING/ERROR (CUDA probing on CPU machines)
    "TF_ENABLE_ONEDNN_OPTS": "1",  # set explicitly so TF does not print the oneDNN notice
    "KERAS_BACKEND": "tensorflow",
    "GRPC_VERBOSITY": "ERROR",
    "ABSL_MIN_LOG_LEVEL": "3",
}


def quiet_environment() -> None:
    """Set the environment variables that keep TensorFlow's start-up noise away (if unset)."""
    for key, value in _QUIET_ENV.items():
        os.environ.setdefault(key, value)


def import_tf():
    """Import and return ``tensorflow`` with its start-up noise silenced."""
    if "tensorflow" in sys.modules:
        return sys.modules["tensorflow"]
    quiet_environment()
    # The CUDA-probing messages are written by C++ code straight to fd 2 during import, before the
    # log level is read in some builds; silence fd 2 for the import only.

    with _stderr_silenced():
        import tensorflow as tf  # noqa: F401
    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    try:
        import absl.logging

        absl.logging.set_verbosity(absl.logging.ERROR)
    except ImportError:  # pragma: no cover - absl ships with tensorflow
        pass
    return tf


class _stderr_silenced:
    """Redirect file descriptor 2 to /dev/null inside the block (C++ writes bypass sys.stderr)."""

    def __enter__(self):
        if os.environ.get("TF_CPP_MIN_LOG_LEVEL") not in ("3",):
            self._saved = None
            return self
        try:
            sys.stderr.flush()
            self._saved = os.dup(2)
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 2)
            os.close(devnull)
        except OSError:  # no real fd 2 (some notebooks): nothing to silence
            self._saved = None
        return self

    def __exit__(self, *exc):
        if self._saved is not None:
            os.dup2(self._saved, 2)
            os.close(self._saved)
        return False


def import_keras():
    """Import and return ``keras`` (TensorFlow backend), quietly."""
    import_tf()
    import keras

    return keras
