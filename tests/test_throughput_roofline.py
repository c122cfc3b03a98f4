"""benchmarks/stylegan2_throughput.py --roofline: the arithmetic it counts and the ops it keeps."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

from ragan._tf import import_tf

tf = import_tf()

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "stylegan2_throughput.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("stylegan2_throughput", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["stylegan2_throughput"] = module
    spec.loader.exec_module(module)
    return module


def conv_cost(n, h, w, kh, kw, cin, cout):
    return 2 * n * h * w * kh * kw * cin * cout


def test_a_training_steps_convolutions_are_counted_and_the_unused_gradient_is_not(bench):
    """A convolution, its two gradients and a matrix product (a squared loss, so that the gradients
    need the forward pass), the kernel's update applied (stateful), and an unused convolution
    beside them, which the runtime prunes."""
    rng = np.random.default_rng(0)
    kernel = tf.Variable(rng.normal(size=(3, 3, 3, 4)).astype(np.float32))
    dense = tf.Variable(rng.normal(size=(8 * 8 * 4, 5)).astype(np.float32))
    x = tf.constant(rng.normal(size=(2, 8, 8, 3)).astype(np.float32))

    @tf.function(autograph=False)
    def step(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = tf.nn.conv2d(x, kernel, strides=1, padding="SAME")
            loss = tf.reduce_sum(tf.square(tf.matmul(tf.reshape(y, [2, -1]), dense)))
        grad_x, grad_kernel = tape.gradient(loss, [x, kernel])
        kernel.assign_sub(0.01 * grad_kernel)
        tf.nn.conv2d(x, tf.ones([5, 5, 3, 7]), strides=2, padding="VALID")  # computed, never used
        return grad_x

    graph = step.get_concrete_function(x).graph
    everything = [op.type for op in graph.get_operations()]
    live = [op for op in bench.live_ops(graph)]
    live_types = [op.type for op in live]
    assert everything.count("Conv2D") == 2 and live_types.count("Conv2D") == 1
    assert {"Conv2DBackpropInput", "Conv2DBackpropFilter", "AssignSubVariableOp"} <= set(live_types)

    flops = {op.type: bench.op_flops(op) for op in live if op.type in bench.ARITHMETIC_OPS}
    forward = conv_cost(2, 8, 8, 3, 3, 3, 4)
    assert flops["Conv2D"] == flops["Conv2DBackpropInput"] == flops["Conv2DBackpropFilter"] == forward
    matmuls = [bench.op_flops(op) for op in live if op.type == "MatMul"]
    # the forward product (2 x 256 by 256 x 5) and the gradient reaching y (the one to dense is unused)
    assert sorted(matmuls) == [2 * 2 * 256 * 5, 2 * 2 * 256 * 5]

    floor = bench.kernel_floor(tf, graph, calls=1)
    assert floor["ops"] == 5
    assert floor["gflop"] == pytest.approx((3 * forward + sum(matmuls)) / 1e9)
    assert set(floor["floor_s_by_op"]) == {"Conv2D", "Conv2DBackpropInput", "Conv2DBackpropFilter", "MatMul"}
    assert floor["floor_s"] >= 0 and floor["call_overhead_s"] > 0


def test_depthwise_filters_count_their_taps_per_channel(bench):
    x = tf.constant(np.zeros((1, 10, 10, 6), np.float32))
    fir = tf.constant(np.ones((4, 4, 6, 1), np.float32))

    @tf.function(autograph=False)
    def down(x):
        return tf.nn.depthwise_conv2d(x, fir, strides=[1, 2, 2, 1], padding="VALID")

    (op,) = [op for op in bench.live_ops(down.get_concrete_function(x).graph) if op.type in bench.ARITHMETIC_OPS]
    assert op.type == "DepthwiseConv2dNative"
    assert bench.op_flops(op) == 2 * 1 * 4 * 4 * 4 * 4 * 6
