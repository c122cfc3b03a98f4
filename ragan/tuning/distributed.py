"""Distributed studies: this process's role, the chief's oracle server, a worker waiting for the chief.

With KerasTuner's environment variables ``KERASTUNER_TUNER_ID`` (``chief`` on the chief, any other
id on a worker), ``KERASTUNER_ORACLE_IP`` and ``KERASTUNER_ORACLE_PORT``, the same ``ragan tune``
call runs as the chief (it serves the oracle over gRPC) or as a worker (it runs trials).
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

from ragan.errors import RaganError
from ragan.tuning import _keras_tuner
from ragan.tuning.study import STUDY_FILE

logger = logging.getLogger(__name__)

__all__ = ["CHIEF_POLL_SECONDS", "WORKER_WAIT_SECONDS", "distributed_role", "serve_oracle", "wait_for_chief"]

CHIEF_POLL_SECONDS = 0.5
# How long a worker started before the chief waits for the study to appear.
WORKER_WAIT_SECONDS = 1800.0


def distributed_role() -> str:
    """``"single"``, ``"chief"`` or ``"worker"``, from KerasTuner's environment variables.

    Example:
        >>> os.environ.pop("KERASTUNER_ORACLE_IP", None); distributed_role()
        'single'
    """
    if "KERASTUNER_ORACLE_IP" not in os.environ:
        return "single"
    for name in ("KERASTUNER_ORACLE_PORT", "KERASTUNER_TUNER_ID"):
        if not os.environ.get(name):
            raise RaganError(
                f"KERASTUNER_ORACLE_IP is set but {name} is not; distributed tuning needs KERASTUNER_TUNER_ID "
                "('chief' on the chief, e.g. 'tuner0' on a worker), KERASTUNER_ORACLE_IP and KERASTUNER_ORACLE_PORT."
            )
    return "chief" if _keras_tuner.is_chief_oracle() else "worker"


def serve_oracle(oracle, poll_seconds: float = CHIEF_POLL_SECONDS) -> None:
    """Serve ``oracle`` to the workers over gRPC until the search is over and every worker has left.

    Same protocol as KerasTuner's chief (its ``OracleServicer``), with a short poll so the chief
    exits as soon as the last worker is done, and a clear error when the port cannot be bound.
    The address comes from ``KERASTUNER_ORACLE_IP`` and ``KERASTUNER_ORACLE_PORT``.

    Example (a server on a port needs workers to finish, so it is not run here):
        >>> os.environ.update(KERASTUNER_TUNER_ID="chief", KERASTUNER_ORACLE_IP="127.0.0.1",
        ...                   KERASTUNER_ORACLE_PORT="8000")                        # doctest: +SKIP
        >>> serve_oracle(tuner.oracle)      # returns when the workers are done   # doctest: +SKIP
    """
    from concurrent import futures

    import grpc

    address = f"{os.environ['KERASTUNER_ORACLE_IP']}:{os.environ['KERASTUNER_ORACLE_PORT']}"
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=1))
    servicer = _keras_tuner.oracle_servicer(oracle)
    _keras_tuner.add_oracle_servicer(servicer, server)
    try:
        bound = server.add_insecure_port(address)
    except RuntimeError:
        bound = 0
    if not bound:
        raise RaganError(
            f"the chief cannot listen on {address} (KERASTUNER_ORACLE_IP:KERASTUNER_ORACLE_PORT); "
            "is the port in use or the address not local?"
        )
    server.start()
    try:
        while not (servicer.stop_triggered and _keras_tuner.exit_chief(oracle)):
            time.sleep(poll_seconds)
    finally:
        server.stop(grace=2)


def wait_for_chief(out: Path, timeout: float = WORKER_WAIT_SECONDS) -> None:
    """A worker waits until the chief has created the study (its ``study.json``)."""
    deadline = time.monotonic() + timeout
    if not (out / STUDY_FILE).is_file():
        logger.info(
            f"worker {os.environ.get('KERASTUNER_TUNER_ID')}: waiting for the chief to create the study in '{out}'",
        )
    while not (out / STUDY_FILE).is_file():
        if time.monotonic() > deadline:
            raise RaganError(
                f"no study appeared in '{out}' within {timeout:.0f} s; start the chief (KERASTUNER_TUNER_ID=chief) "
                "with the same command, and let every process see the same --out directory."
            )
        time.sleep(1.0)
