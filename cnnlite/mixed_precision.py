"""Mixed precision, Keras's way: `set_global_policy("mixed_bfloat16")`, or `dtype="mixed_bfloat16"` on one layer.

A policy names a layer's compute dtype and its variable dtype:

| policy | compute dtype | variable dtype |
|---|---|---|
| `float32` (the default) | float32 | float32 |
| `mixed_bfloat16` | bfloat16 | float32 |

Under `mixed_bfloat16` a layer's matrix products take their operands rounded to bfloat16 (round to nearest even)
and accumulate the products in float32 (AVX512_BF16's `vdpbf16ps`, or a portable kernel with the same bits on a CPU
without it, or when `cnnlite.config.set_isa` caps the level below avx512: `cnnlite._kernels.gemm_bf16_isa()` says
which runs). Everything else stays float32: the weights (master copies: `get_weights` returns them, the optimizer
updates them and keeps its state in float32), the bias and activation in the kernels' store, the gradients handed to
the optimizer, the softmax and the loss. Unlike Keras, the activations between layers stay float32 too (only the
operands of the products are rounded), so a model under the policy is a little closer to float32 than Keras's.
Results stay bitwise identical for any thread count.

Which passes actually run in bfloat16 is a decision of the execution plan: `print(model.plan)` shows `bf16` after
each such pass. Today: Dense's three GEMMs and the Winograd convolutions' three passes; a convolution run by the
direct or GEMM algorithm stays float32 (its step's note says so).

A layer takes the global policy in force when it is constructed (`dtype=None`), as in Keras; the policy is process
wide. Without it, nothing changes: the float32 kernels and their bits are exactly those of a build without this
module.
"""

POLICY_NAMES = ("float32", "mixed_bfloat16")
_COMPUTE = {"float32": "float32", "mixed_bfloat16": "bfloat16"}


def _policy_name(value, argument, owner):
    """The policy name `value` stands for: a Policy, one of POLICY_NAMES, numpy's float32, or a Keras policy config
    ({"class_name": "DTypePolicy" or "Policy", "config": {"name": ...}}); ValueError naming `argument` else."""
    if isinstance(value, Policy):
        return value.name
    name = value
    if isinstance(value, dict):
        config = value.get("config")
        name = config.get("name") if isinstance(config, dict) else None
    elif not isinstance(value, str):
        try:
            import numpy as np
            if np.dtype(value) == np.float32:
                return "float32"
        except TypeError:
            pass
        name = None
    if name not in POLICY_NAMES:
        raise ValueError(f"{owner}: `{argument}` must be one of {list(POLICY_NAMES)} (or a Policy), "
                         f"received {argument}={value!r}")
    return name


class Policy:
    """A dtype policy: `Policy("mixed_bfloat16")`. `name`, `compute_dtype` ('float32' or 'bfloat16') and
    `variable_dtype` (always 'float32')."""

    __slots__ = ("_name",)

    def __init__(self, name):
        self._name = _policy_name(name, "name", "Policy")

    @property
    def name(self):
        return self._name

    @property
    def compute_dtype(self):
        return _COMPUTE[self._name]

    @property
    def variable_dtype(self):
        return "float32"

    def get_config(self):
        return {"name": self._name}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __eq__(self, other):
        return isinstance(other, Policy) and other._name == self._name

    def __hash__(self):
        return hash(self._name)

    def __repr__(self):
        return f'<DTypePolicy "{self._name}">'


DTypePolicy = Policy  # Keras 3's name

_GLOBAL = [Policy("float32")]


def set_global_policy(policy):
    """Set the policy of layers constructed from now on without a `dtype`: a Policy or its name ('float32',
    'mixed_bfloat16'); None restores 'float32'. ValueError for anything else, naming `policy`."""
    _GLOBAL[0] = Policy("float32") if policy is None else Policy(_policy_name(policy, "policy", "set_global_policy"))


def global_policy():
    """The global Policy (float32 unless set_global_policy changed it)."""
    return _GLOBAL[0]


PASSES = ("forward", "input_grad", "weight_grad")


def pass_precisions(bf16, passes):
    """The per-pass precisions of a step: "bfloat16" for the passes named in `passes` when `bf16`, else "float32"."""
    return {p: "bfloat16" if bf16 and p in passes else "float32" for p in PASSES}


def layer_policy(dtype, owner):
    """The Policy of a layer constructed with `dtype` (None: the global policy); ValueError naming `dtype`."""
    if dtype is None:
        return global_policy()
    return Policy(_policy_name(dtype, "dtype", owner))
