"""One plan, three walkers: the Keras model, the ONNX graph and Table 1 must agree with the plan on
every layer's name, output shape and parameter count, over the whole metaparameter space, and Keras
and ONNX Runtime must compute the same scores."""

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from squeezekit.config import SqueezeNetConfig
from squeezekit.graph import Conv, Fire, GlobalPool, Activation, build_plan, layer_table, minimum_input_size

keras = pytest.importorskip("keras")
onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")


@st.composite
def architectures(draw):
    num_fire = draw(st.integers(1, 8))
    fire_names = [f"fire{i + 2}" for i in range(num_fire)]
    pool_stride = draw(st.integers(1, 3))
    config = SqueezeNetConfig(
        base_e=draw(st.integers(2, 24)), incr_e=draw(st.integers(0, 24)), freq=draw(st.integers(1, 4)),
        pct_3x3=draw(st.one_of(st.sampled_from([0.0, 0.01, 0.5, 0.99, 1.0]), st.floats(0, 1))),
        squeeze_ratio=draw(st.floats(0.05, 1.0)), num_fire=num_fire,
        conv1_filters=draw(st.integers(2, 24)), conv1_kernel=draw(st.integers(1, 7)),
        conv1_stride=draw(st.integers(1, 3)), conv1_padding=draw(st.sampled_from(["valid", "same"])),
        pool_after=tuple(draw(st.lists(st.sampled_from(["conv1", *fire_names]), max_size=3, unique=True))),
        pool_size=draw(st.integers(pool_stride, 3)), pool_stride=pool_stride,
        pool_rounding=draw(st.sampled_from(["ceil", "floor"])), bypass=draw(st.sampled_from(["none", "simple", "complex"])),
        classifier_pad=draw(st.integers(0, 1)), batch_norm=draw(st.booleans()),
        classifier_relu=draw(st.booleans()),
    )
    minimum = minimum_input_size(config)
    height = draw(st.integers(minimum, minimum + 12))
    width = draw(st.integers(minimum, minimum + 12))
    return config, (height, width), draw(st.integers(1, 12)), draw(st.sampled_from([1, 3]))


def _randomise(model, seed):
    """Non-trivial weights: positive biases keep ReLUs alive, batch-norm statistics far from identity."""
    rng = np.random.default_rng(seed)
    for weight in model.weights:
        shape = tuple(weight.shape)
        if weight.path.endswith("/bias"):
            weight.assign(rng.uniform(0.0, 0.2, shape).astype("float32"))
        elif weight.path.endswith(("/moving_variance", "/gamma")):
            weight.assign(rng.uniform(0.5, 2.0, shape).astype("float32"))
        elif weight.path.endswith(("/moving_mean", "/beta")):
            weight.assign(rng.uniform(-0.2, 0.2, shape).astype("float32"))


def _keras_parameters(model, op) -> int:
    names = [op.name, f"{op.name}_bn"] if isinstance(op, Conv) else [op.name]
    return sum(model.get_layer(n).count_params() for n in names if n in {layer.name for layer in model.layers})


# 20 random architectures on TensorFlow, which runs the whole suite; 8 on JAX and PyTorch, which run
# this file again for their own layers (tests/models/test_squeezenet.py covers the presets there too).
# JAX compiles each new architecture: about 6.7 s each on CI's slower hosts, 133 s of its 4.5 minutes.
EXAMPLES = 20 if keras.backend.backend() == "tensorflow" else 8


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(case=architectures())
def test_keras_onnx_and_plan_agree(case):
    from squeezekit.formats.onnx import build_onnx_model
    from squeezekit.models.squeezenet import SqueezeNet

    config, (height, width), classes, channels = case
    plan = build_plan(config, classes, input_size=(height, width), channels=channels, activation=None)
    model = SqueezeNet(config, input_shape=(height, width, channels), classes=classes, classifier_activation=None)
    _randomise(model, seed=height * width + classes)

    # Keras: one layer per plan op, with the plan's output shape and parameter count.
    for op in plan.ops[1:]:
        layer = model.get_layer(op.name)
        expected = op.shape[2:] if isinstance(op, (GlobalPool, Activation)) else op.shape
        assert tuple(layer.output.shape[1:]) == expected, op.name
        assert _keras_parameters(model, op) == op.parameters, op.name
    assert model.count_params() == plan.parameters

    # ONNX: every op's output is a value of the same name and shape (NCHW); each convolution has its
    # weight and bias, batch norm folded in.
    arrays = {w.path: keras.ops.convert_to_numpy(w) for w in model.weights}
    graph = build_onnx_model(config, arrays, input_size=(height, width), channels=channels, include_softmax=False)
    inferred = onnx.shape_inference.infer_shapes(graph, strict_mode=True).graph
    shapes = {v.name: tuple(d.dim_value for d in v.type.tensor_type.shape.dim[1:]) for v in inferred.value_info}
    for op in plan.ops[1:]:
        if isinstance(op, (Conv, Fire)) or op.kind in ("maxpool", "add", "pad"):
            h, w, c = op.shape
            assert shapes[op.name] == (c, h, w), op.name
    initializers = {i.name: int(np.prod(i.dims)) for i in graph.graph.initializer}
    for conv in plan.convs():
        assert initializers[f"{conv.name}/weight"] == conv.weight_count
        assert initializers[f"{conv.name}/bias"] == conv.filters

    # Table 1 is the same plan.
    table = layer_table(config, (height, width), channels=channels, classes=classes)
    assert table.parameters == plan.parameters and table.macs == plan.macs

    # Numbers: Keras and ONNX Runtime.
    images = np.random.default_rng(0).uniform(-50, 50, (2, height, width, channels)).astype("float32")
    expected = np.asarray(model.predict_on_batch(images))
    session = ort.InferenceSession(graph.SerializeToString(), providers=["CPUExecutionProvider"])
    got = session.run(None, {"image": images})[0]
    # A network whose ReLUs all died (it happens to tiny random ones) would agree trivially: draw another.
    assume(np.abs(expected).max() > 0)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4 * float(np.abs(expected).max()))


def test_plan_names_and_order_v1_1():
    plan = build_plan(SqueezeNetConfig(conv1_filters=64, conv1_kernel=3, pool_after=("conv1", "fire3", "fire5"),
                                       bypass="complex"), 10, input_size=227)
    names = [op.name for op in plan]
    assert names[:8] == ["image", "conv1", "pool1", "fire2", "fire2_bypass", "fire2_add", "fire3", "fire3_add"]
    assert names[-4:] == ["drop9", "conv10", "pool10", "predictions"]
    assert [c.name for c in plan.convs()][:4] == ["conv1", "fire2/squeeze1x1", "fire2/expand1x1", "fire2/expand3x3"]
    assert plan["pool5"].shape == (14, 14, 256)
    # By hand: conv1 3*3*3*64 weights at 113x113; fire2's squeeze 64->16 at 56x56.
    assert plan["conv1"].macs == 3 * 3 * 3 * 64 * 113 * 113
    assert plan["fire2"].squeeze.macs == 64 * 16 * 56 * 56


def test_free_input_size_leaves_macs_unknown():
    plan = build_plan(SqueezeNetConfig(), 1000)
    assert plan.input_shape == (None, None, 3) and plan.macs is None
    assert plan.parameters == 1_248_424
