"""Keras internals behind one checked module; TensorFlow's replaced by public API."""

from __future__ import annotations

import pytest

from ragan.errors import RaganError


def test_the_installed_keras_has_every_internal_ragan_uses():
    from ragan._keras_internals import missing_internals

    assert missing_internals() == []


@pytest.mark.parametrize("missing", ["method", "signature"])
def test_a_keras_without_them_is_one_line_naming_the_tested_version(monkeypatch, missing):
    from ragan import _keras_internals
    from ragan._tf import import_keras

    keras = import_keras()
    if missing == "method":
        monkeypatch.setattr(keras.Model, "_make_function", None)  # a release without it
        named = "keras.Model._make_function"
    else:
        monkeypatch.setattr(keras.Model, "_make_function", lambda self, step_function, jit=False: None)
        named = "keras.Model._make_function('self', 'step_function') (now ('self', 'step_function', 'jit'))"
    _keras_internals.require_internals.cache_clear()
    try:
        with pytest.raises(RaganError) as caught:
            _keras_internals.compile_step(keras.Sequential(), lambda data: data)
    finally:
        _keras_internals.require_internals.cache_clear()
    message = str(caught.value)
    assert message.startswith(f"keras {keras.__version__} lacks internals ragan's training relies on")
    assert named in message and f"tested with keras {_keras_internals.TESTED}" in message and "\n" not in message


@pytest.mark.parametrize("text", ["1", "4", "3(x2),2,1", "2(x3)", "1,1,1", "16(x12),8"])
def test_slurm_tasks_per_node_parse_as_tensorflow_does(text):
    from tensorflow.python.distribute.cluster_resolver.slurm_cluster_resolver import (
        expand_tasks_per_node as tensorflow_version,
    )

    from ragan.training.strategy import expand_tasks_per_node

    assert expand_tasks_per_node(text) == tensorflow_version(text)


@pytest.mark.parametrize("text", ["", "2(x)", "x3", "2(3)", "1;2"])
def test_a_malformed_slurm_tasks_per_node_is_one_line(text):
    from ragan.training.strategy import expand_tasks_per_node

    with pytest.raises(RaganError, match="SLURM_STEP_TASKS_PER_NODE"):
        expand_tasks_per_node(text)


def test_one_process_outside_multi_worker_training():
    from ragan._tf import import_tf
    from ragan.training.strategy import is_multi_worker, num_workers

    strategy = import_tf().distribute.get_strategy()
    assert num_workers(strategy) == 1 and is_multi_worker(strategy) is False
