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


def _adam_run(update, optimizer_options=None, steps=4, function=True):
    """Variables, slots and step count after ``steps`` updates with the same gradients."""
    from ragan._tf import import_keras, import_tf

    tf, keras = import_tf(), import_keras()
    rng = np.random.default_rng(1)
    shapes = [(3, 3, 4, 5), (5,), (7, 2)]
    variables = [keras.Variable(rng.normal(size=shape).astype("float32")) for shape in shapes]
    # StyleGAN2's lazy-regularisation Adam: beta_1 = 0, beta_2 = 0.99 ** (4/5), learning rate * 4/5.
    options = {"learning_rate": 0.002 * 0.8, "beta_1": 0.0, "beta_2": 0.99**0.8, "epsilon": 1e-8}
    optimizer = keras.optimizers.Adam(**{**options, **(optimizer_options or {})})
    steps = [[tf.constant(rng.normal(size=shape).astype("float32")) for shape in shapes] for _ in range(steps)]
    call = lambda gradients: update(optimizer, gradients, variables)  # noqa: E731
    call = tf.function(call) if function else call
    results = [call(gradients) for gradients in steps]
    slots = [variable.numpy() for variable in optimizer.variables]
    return [variable.numpy() for variable in variables], slots, results


def _keras_apply(optimizer, gradients, variables):
    optimizer.apply_gradients(zip(gradients, variables))
    return True


@pytest.mark.parametrize("function", [True, False], ids=["tf.function", "eager"])
def test_the_fused_adam_update_is_keras_adam_with_one_kernel_per_variable(function):
    from ragan._keras_internals import fused_adam_update

    keras_weights, keras_slots, _ = _adam_run(_keras_apply, function=function)
    fused_weights, fused_slots, used = _adam_run(fused_adam_update, function=function)
    assert all(bool(flag) for flag in used)
    # The same slots (iterations, learning rate, m and v per variable), so checkpoints are unchanged.
    assert [slot.shape for slot in fused_slots] == [slot.shape for slot in keras_slots]
    for fused, expected in zip(fused_weights + fused_slots, keras_weights + keras_slots):
        np.testing.assert_allclose(fused, expected, rtol=1e-5, atol=1e-6)
    assert float(fused_slots[0]) == 4  # the iteration counter
    # A wrong rule (e.g. no bias correction) would move the weights by far more than the tolerance.
    moved = max(np.abs(a - b).max() for a, b in zip(fused_weights, _adam_run(_keras_apply, steps=0)[0]))
    assert moved > 1e-3


@pytest.mark.parametrize(
    "options",
    [{"amsgrad": True}, {"weight_decay": 0.01}, {"clipnorm": 1.0}, {"global_clipnorm": 1.0}, {"use_ema": True}],
    ids=["amsgrad", "weight_decay", "clipnorm", "global_clipnorm", "ema"],
)
def test_an_adam_the_fused_update_does_not_cover_is_left_to_keras(options):
    from ragan._keras_internals import fused_adam_update

    weights, slots, used = _adam_run(fused_adam_update, options, steps=2, function=False)
    assert used == [False, False]
    untouched, _, _ = _adam_run(fused_adam_update, options, steps=0, function=False)
    assert all(np.array_equal(a, b) for a, b in zip(weights, untouched))


def test_other_optimizers_and_loss_scaling_are_left_to_keras():
    from ragan._keras_internals import fused_adam_update
    from ragan._tf import import_keras

    keras = import_keras()
    variable = keras.Variable(np.ones(3, "float32"))
    gradient = np.ones(3, "float32")
    for optimizer in (
        keras.optimizers.SGD(0.1),
        keras.optimizers.AdamW(0.1),
        keras.optimizers.LossScaleOptimizer(keras.optimizers.Adam(0.1)),
    ):
        assert fused_adam_update(optimizer, [keras.ops.convert_to_tensor(gradient)], [variable]) is False
    assert np.array_equal(variable.numpy(), np.ones(3))
