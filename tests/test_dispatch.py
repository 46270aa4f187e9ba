"""Which path runs: the convolution algorithm of each pass (model.plan, passed explicitly to the kernels) and the
ISA of the GEMM micro-kernel (cpu_isa()). A forced algorithm that does not apply to a pass is reported in the plan
(a note) and the automatic choice runs there; the kernels themselves refuse an explicit algorithm that does not
apply (tests/test_bad_input.py, GEOMETRY)."""
import numpy as np
import pytest

from cnnlite import _kernels as K
from cnnlite import config
from cnnlite.layers import Conv2D, Dense, Flatten, MaxPooling2D
from cnnlite.models import Sequential

PASSES = {"conv2d_forward": "forward", "conv2d_backward_input": "input_grad",
          "conv2d_backward_weights_shards": "weight_grad", "conv2d_maxpool_forward": "forward",
          "conv2d_maxpool_backward_input": "input_grad", "conv2d_maxpool_backward_weights_shards": "weight_grad"}


def _chapter_cnn():
    """The full network's convolutions (1 input channel: direct; 16 and 32: Winograd; a 2x2 stride-2 one: GEMM)."""
    return Sequential([Conv2D(16, 3, activation="relu", input_shape=(20, 20, 1)), Conv2D(32, 3, activation="relu"),
                       MaxPooling2D(2), Conv2D(64, 3, activation="relu"), Conv2D(8, 2, strides=2), Flatten(),
                       Dense(10, activation="softmax")])


AUTO_FORWARD = {"avx512": ["direct", "winograd", "winograd", "gemm"], "avx2": ["direct", "gemm", "winograd", "gemm"],
                "generic": ["direct", "gemm", "gemm", "gemm"]}


@pytest.mark.parametrize("forced", ["auto", "gemm", "winograd", "direct"])
def test_the_plan_names_the_algorithm_each_kernel_call_runs(forced, monkeypatch):
    calls = []
    for name in PASSES:
        original = getattr(K, name)

        def spy(*args, _original=original, _name=name, **kwargs):
            calls.append((_name, kwargs.get("algo")))
            return _original(*args, **kwargs)
        monkeypatch.setattr(K, name, spy)
    rng = np.random.default_rng(0)
    # (conv_dense_fusion off: a direct last conv would run the Dense's product in conv2d_forward_dense,
    # tests/test_conv_dense_fusion.py)
    with config.override(conv_algo=forced, conv_dense_fusion=False):  # the plan is built inside the block
        model = _chapter_cnn()
        model.compile("sgd", "categorical_crossentropy")
        model.train_on_batch(rng.random((8, 20, 20, 1), dtype=np.float32), np.eye(10, dtype=np.float32)[:8])
        plan = model.plan                               # (model.plan follows the settings in force when read)
    conv_steps = [s for s in plan.steps if isinstance(s.layer, Conv2D)]
    expected = []
    for i, step in enumerate(conv_steps):
        for key in ("forward", "weight_grad", "input_grad"):
            algo = step.algorithms[key]
            if key == "input_grad" and not step.need_dx:
                continue                                # the first layer computes no input gradient
            assert algo in ("gemm", "winograd", "direct"), (i, key, algo)
            if forced != "auto":     # the forced algorithm where it applies, else the automatic choice and a note
                noted = any(f"forced {forced} does not apply to the {key.replace('_', ' ')}" in n for n in step.notes)
                assert (algo == forced) != noted, (i, key, algo, step.notes)
        if step.pool_in_store:  # max-pool in the Winograd store: the fused kernels, Winograd by construction
            assert all(step.algorithms[k] == "winograd" for k in ("forward", "weight_grad", "input_grad"))
        expected.append(("conv2d_maxpool_forward", None) if step.pool_in_store
                        else ("conv2d_forward", step.algorithms["forward"]))
    # the order of the calls: forwards in layer order, then each layer's weight gradient (every reduction shard in
    # one call) and (except the first) input gradient in reverse layer order
    for step in reversed(conv_steps):
        if step.pool_in_store or step.pool_grad_in_kernels:  # the pool's gradient: Winograd gradient kernels
            assert step.algorithms["weight_grad"] == "winograd" and step.algorithms["input_grad"] in ("winograd", None)
            expected.append(("conv2d_maxpool_backward_weights_shards", None))
            if step.need_dx:
                expected.append(("conv2d_maxpool_backward_input", None))
            continue
        expected.append(("conv2d_backward_weights_shards", step.algorithms["weight_grad"]))
        if step.need_dx:
            expected.append(("conv2d_backward_input", step.algorithms["input_grad"]))
    assert calls == expected
    if forced == "auto":
        # Winograd's forward from 8 input channels at avx512, 32 at avx2, never at generic (winograd_min_channels)
        assert [s.algorithms["forward"] for s in conv_steps] == AUTO_FORWARD[K.get_isa()]
    elif forced == "winograd":   # the 2x2 stride-2 layer: Winograd does not apply, a note says so
        assert conv_steps[-1].algorithms["forward"] == "gemm" and conv_steps[-1].notes
    else:
        assert all(s.algorithms["forward"] == forced for s in conv_steps)


def test_the_isa_that_runs_is_reported():
    assert K.get_isa() in K.available_isas() and K.cpu_isa() in ("avx512", "avx2", "generic")
