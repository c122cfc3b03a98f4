"""Keras internals behind one checked module; TensorFlow's replaced by public API."""

from __future__ import annotations

import numpy as np
import pytest

from ragan.errors import RaganError


def test_the_installed_keras_has_every_internal_ragan_uses():
    from ragan._keras_internals import missing_internals

    assert missing_internals() == []


def test_a_keras_without_them_is_one_line_naming_the_tested_version(monkeypatch):
    from ragan import _keras_internals
    from ragan._tf import import_keras

    keras = import_keras()
    monkeypatch.setattr(_keras_internals, "PRIVATE_ATTRIBUTES", ("_distribute_strategy", "_gone_in_keras_4"))
    _keras_internals.require_internals.cache_clear()
    try:
        with pytest.raises(RaganError) as caught:
            _keras_internals.unset_distribute_strategy(keras.Sequential())
    finally:
        _keras_internals.require_internals.cache_clear()
    message = str(caught.value)
    assert message.startswith(f"keras {keras.__version__} lacks internals ragan's training relies on")
    assert "keras.Model()._gone_in_keras_4" in message and "keras.Model()._distribute_strategy" not in message
    assert f"tested with keras {_keras_internals.TESTED}" in message and "\n" not in message


def test_seeding_keeps_tensorflow_kernels_and_falls_back_without_the_internals(monkeypatch):
    from ragan import _tf_internals
    from ragan._tf import import_tf

    tf = import_tf()
    assert _tf_internals.missing_internals() == []
    draws = []
    for context in (_tf_internals._eager_context(), None):  # the fenced path, then a TF without it
        monkeypatch.setattr(_tf_internals, "_eager_context", lambda context=context: context)
        _tf_internals.set_random_seed(5)
        draws.append((np.random.random(), float(tf.random.uniform([]))))
        assert tf.random.set_seed.__name__ == "set_seed"  # TensorFlow's own function is back
    assert draws[0] == draws[1]


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
