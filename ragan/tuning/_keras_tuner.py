"""Every KerasTuner internal ragan relies on, in one place (the only module that imports ``keras_tuner.src``).

ragan serves the oracle to distributed workers itself, runs its own trial loop and writes KerasTuner's
state files atomically. That needs a few of KerasTuner's private modules and the private methods of
its public ``Oracle`` and ``BaseTuner``, listed below. ragan is tested with keras-tuner
``>=1.4.8,<1.5`` (``setup.py`` pins that range); :func:`missing_internals` names any internal another
release lacks, and :func:`require_internals` turns that into one line for the user.

Example:
    >>> missing_internals()
    []
    >>> is_chief_oracle()      # no KERASTUNER_* variables: not a distributed chief
    False
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import inspect
from collections.abc import Iterator

from ragan._common import first_line
from ragan._tf import import_tf
from ragan.errors import RaganError

import_tf()  # keras_tuner imports keras/TensorFlow: do it quietly first.
import keras_tuner  # noqa: E402

__all__ = [
    "PRIVATE_MODULES",
    "PRIVATE_MEMBERS",
    "TESTED_RANGE",
    "add_oracle_servicer",
    "exit_chief",
    "is_chief_oracle",
    "keras_tuner",
    "missing_internals",
    "oracle_servicer",
    "quiet_trial_tracebacks",
    "require_internals",
]

TESTED_RANGE = ">=1.4.8,<1.5"

# Private modules -> the names ragan uses from each.
PRIVATE_MODULES = {
    "keras_tuner.src.distribute.utils": ("is_chief_oracle",),
    "keras_tuner.src.distribute.oracle_chief": ("OracleServicer", "exit_chief"),
    "keras_tuner.src.protos": ("get_service_grpc",),
    "keras_tuner.src.config": ("DEBUG",),
}
# Classes and functions -> the methods ragan overrides or calls (private ones included), with their
# parameters ("__call__": the function itself).
PRIVATE_MEMBERS = {
    "keras_tuner.Oracle": {
        "_get_oracle_fname": ("self",),
        "_get_trial_dir": ("self", "trial_id"),
        "_save_trial": ("self", "trial"),
        "_check_consecutive_failures": ("self",),
        "create_trial": ("self", "tuner_id"),
        "get_space": ("self",),
        "get_state": ("self",),
    },
    "keras_tuner.engine.base_tuner.BaseTuner": {
        "_is_worker": ("self",),
        "_try_run_and_update_trial": ("self", "trial", "fit_args", "fit_kwargs"),
        "_get_tuner_fname": ("self",),
        "run_trial": ("self", "trial", "fit_args", "fit_kwargs"),
        "pre_create_trial": ("self",),
        "on_search_begin": ("self",),
        "on_trial_begin": ("self", "trial"),
        "on_trial_end": ("self", "trial"),
        "on_search_end": ("self",),
        "get_state": ("self",),
    },
    "keras_tuner.src.distribute.oracle_chief.OracleServicer": {"__init__": ("self", "oracle")},
    "keras_tuner.src.distribute.oracle_chief.exit_chief": {"__call__": ("oracle",)},
}
# Attributes an oracle (after Oracle.__init__) and the chief's servicer must have.
ORACLE_ATTRIBUTES = ("trials", "ongoing_trials", "tuner_ids", "max_consecutive_failed_trials")
SERVICER_ATTRIBUTES = ("stop_triggered",)


def _resolve(dotted: str):
    """The object named ``package.module.Class`` (the longest importable module prefix, then attributes)."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            target = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for name in parts[cut:]:
            target = getattr(target, name)
        return target
    raise ImportError(dotted)


def _parameters(function) -> tuple[str, ...]:
    """Parameter names, also of a function wrapped by ``keras_tuner.synchronized`` (which keeps no ``__wrapped__``)."""
    function = inspect.unwrap(function)
    cells = dict(zip(function.__code__.co_freevars, function.__closure__ or ()))
    if function.__name__ == "wrapped_func" and "func" in cells:
        function = cells["func"].cell_contents
    return tuple(inspect.signature(function).parameters)


def missing_internals() -> list[str]:
    """The internals of the installed KerasTuner that ragan needs and cannot find (``[]`` when all are there)."""
    missing = []
    for module, names in PRIVATE_MODULES.items():
        try:
            loaded = importlib.import_module(module)
        except ImportError:
            missing.append(f"module {module}")
            continue
        missing += [f"{module}.{name}" for name in names if not hasattr(loaded, name)]
    for owner, members in PRIVATE_MEMBERS.items():
        try:
            target = _resolve(owner)
        except (ImportError, AttributeError):
            missing.append(owner)
            continue
        for name, expected in members.items():
            function = target if name == "__call__" else getattr(target, name, None)
            where = owner if name == "__call__" else f"{owner}.{name}"
            if function is None:
                missing.append(where)
            elif _parameters(function) != expected:
                missing.append(f"{where}{tuple(expected)} (now {_parameters(function)})")
    missing += _missing_attributes()
    return missing


def _missing_attributes() -> list[str]:
    """What an oracle, the chief's servicer and the gRPC service must hold once made (not visible on the classes)."""
    try:
        oracle = keras_tuner.oracles.RandomSearchOracle(objective=keras_tuner.Objective("score", "min"), max_trials=1)
        servicer = _lookup("keras_tuner.src.distribute.oracle_chief", "OracleServicer")(oracle)
        service = _lookup("keras_tuner.src.protos", "get_service_grpc")()
    except Exception as error:  # noqa: BLE001 - reported as a missing internal
        return [f"an oracle, its OracleServicer and the gRPC service ({type(error).__name__}: {first_line(error)})"]
    missing = [f"Oracle().{name}" for name in ORACLE_ATTRIBUTES if not hasattr(oracle, name)]
    missing += [f"OracleServicer(oracle).{name}" for name in SERVICER_ATTRIBUTES if not hasattr(servicer, name)]
    if not hasattr(service, "add_OracleServicer_to_server"):
        missing.append("keras_tuner.src.protos.get_service_grpc().add_OracleServicer_to_server")
    return missing


@functools.cache
def require_internals() -> None:
    """Raise a one-line :class:`RaganError` when the installed KerasTuner lacks an internal ragan needs."""
    missing = missing_internals()
    if missing:
        raise RaganError(
            f"keras-tuner {keras_tuner.__version__} lacks internals ragan's tuner relies on ({', '.join(missing)}); "
            f"ragan is tested with keras-tuner{TESTED_RANGE}: pip install 'keras-tuner{TESTED_RANGE}'."
        )


def _lookup(module: str, name: str):
    return getattr(importlib.import_module(module), name)


def _private(module: str, name: str):
    """``module.name``; when it is gone, the one-line error of :func:`require_internals`."""
    try:
        return _lookup(module, name)
    except (ImportError, AttributeError):
        require_internals()
        raise


def is_chief_oracle() -> bool:
    """Whether this process is a distributed study's chief (``KERASTUNER_TUNER_ID=chief`` with an oracle address)."""
    return bool(_private("keras_tuner.src.distribute.utils", "is_chief_oracle")())


def oracle_servicer(oracle):
    """KerasTuner's gRPC ``OracleServicer`` for ``oracle`` (its ``stop_triggered`` says the search ended)."""
    return _private("keras_tuner.src.distribute.oracle_chief", "OracleServicer")(oracle)


def add_oracle_servicer(servicer, server) -> None:
    """Register ``servicer`` on a ``grpc.server``."""
    _private("keras_tuner.src.protos", "get_service_grpc")().add_OracleServicer_to_server(servicer, server)


def exit_chief(oracle) -> bool:
    """Whether the chief may leave: no trial running and every worker gone."""
    return bool(_private("keras_tuner.src.distribute.oracle_chief", "exit_chief")(oracle))


@contextlib.contextmanager
def quiet_trial_tracebacks() -> Iterator[None]:
    """Turn KerasTuner's traceback for every failed trial off inside the ``with`` block.

    Example:
        >>> with quiet_trial_tracebacks():
        ...     importlib.import_module("keras_tuner.src.config").DEBUG
        False
    """
    config = importlib.import_module("keras_tuner.src.config")
    debug, config.DEBUG = config.DEBUG, False
    try:
        yield
    finally:
        config.DEBUG = debug
