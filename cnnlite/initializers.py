"""Weight initialisers with Keras's names, defaults, fan computations and variance-scaling rules.

`init(shape, dtype=None, rng=None)` returns a float32 array. Randomness: an initialiser constructed with `seed`
draws from its own generator (the same values on every call, as Keras); otherwise from `rng` (the generator the
model owns, so `np.random.seed(...)` before building makes weights repeatable), else from NumPy's global RNG.
"""
import math

import numpy as np

from cnnlite._registry import Registry
from cnnlite._validation import check_optional_seed

_TRUNCATED_STD = 0.87962566103423978  # stddev of a unit normal truncated to [-2, 2]


def compute_fans(shape):
    """Keras's (fan_in, fan_out): Dense (in, out); Conv (kh, kw, in, out) -> receptive field times channels."""
    shape = tuple(shape)
    if len(shape) < 1:
        return 1, 1
    if len(shape) == 1:
        return shape[0], shape[0]
    if len(shape) == 2:
        return shape[0], shape[1]
    receptive = int(np.prod(shape[:-2]))
    return shape[-2] * receptive, shape[-1] * receptive


def _check_dtype(dtype):
    if dtype is not None and np.dtype(dtype) != np.float32:
        raise ValueError(f"cnnlite initialisers produce float32 only, received dtype={dtype!r}")


def _truncated_normal(gen, shape, mean, stddev):
    """Normal samples redrawn until all lie within two standard deviations (as TensorFlow)."""
    z = gen.standard_normal(shape)
    bad = np.abs(z) > 2.0
    while bad.any():
        z[bad] = gen.standard_normal(int(bad.sum()))
        bad = np.abs(z) > 2.0
    return mean + stddev * z


class Initializer:
    """Base class: subclasses implement `_sample(shape, gen)` (gen may be unused) and `get_config()`."""

    seed = None

    def __call__(self, shape, dtype=None, rng=None):
        _check_dtype(dtype)
        shape = tuple(int(s) for s in shape)
        if self.seed is not None:
            gen = np.random.default_rng(self.seed)
        elif rng is not None:
            gen = rng
        else:
            gen = np.random.default_rng(np.random.randint(0, 2**31 - 1))
        return np.ascontiguousarray(self._sample(shape, gen), dtype=np.float32)

    def get_config(self):
        return {}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


class Zeros(Initializer):
    def _sample(self, shape, gen):
        return np.zeros(shape, np.float32)


class Ones(Initializer):
    def _sample(self, shape, gen):
        return np.ones(shape, np.float32)


class Constant(Initializer):
    def __init__(self, value=0.0):
        try:
            self.value = float(value)
        except (TypeError, ValueError):
            raise ValueError(f"Constant: `value` must be a number, received value={value!r}") from None

    def _sample(self, shape, gen):
        return np.full(shape, self.value, np.float32)

    def get_config(self):
        return {"value": self.value}


class RandomNormal(Initializer):
    def __init__(self, mean=0.0, stddev=0.05, seed=None):
        if not stddev >= 0:
            raise ValueError(f"RandomNormal: `stddev` must be >= 0, received stddev={stddev!r}")
        self.mean, self.stddev, self.seed = float(mean), float(stddev), check_optional_seed(seed, "RandomNormal")

    def _sample(self, shape, gen):
        return gen.normal(self.mean, self.stddev, shape)

    def get_config(self):
        return {"mean": self.mean, "stddev": self.stddev, "seed": self.seed}


class RandomUniform(Initializer):
    def __init__(self, minval=-0.05, maxval=0.05, seed=None):
        if not maxval >= minval:
            raise ValueError(f"RandomUniform: `maxval` must be >= `minval`, received minval={minval!r}, "
                             f"maxval={maxval!r}")
        self.minval, self.maxval, self.seed = float(minval), float(maxval), check_optional_seed(seed, "RandomUniform")

    def _sample(self, shape, gen):
        return gen.uniform(self.minval, self.maxval, shape)

    def get_config(self):
        return {"minval": self.minval, "maxval": self.maxval, "seed": self.seed}


class TruncatedNormal(Initializer):
    def __init__(self, mean=0.0, stddev=0.05, seed=None):
        if not stddev >= 0:
            raise ValueError(f"TruncatedNormal: `stddev` must be >= 0, received stddev={stddev!r}")
        self.mean, self.stddev, self.seed = float(mean), float(stddev), check_optional_seed(seed, "TruncatedNormal")

    def _sample(self, shape, gen):
        return _truncated_normal(gen, shape, self.mean, self.stddev)

    def get_config(self):
        return {"mean": self.mean, "stddev": self.stddev, "seed": self.seed}


class VarianceScaling(Initializer):
    """Samples with variance `scale / n`, n = fan_in, fan_out or their mean (Keras's rule)."""

    _MODES = ("fan_in", "fan_out", "fan_avg")
    _DISTRIBUTIONS = ("truncated_normal", "untruncated_normal", "normal", "uniform")

    def __init__(self, scale=1.0, mode="fan_in", distribution="truncated_normal", seed=None):
        name = type(self).__name__
        if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not scale > 0:
            raise ValueError(f"{name}: `scale` must be a positive float, received scale={scale!r}")
        if mode not in self._MODES:
            raise ValueError(f"{name}: `mode` must be one of {self._MODES}, received mode={mode!r}")
        if distribution not in self._DISTRIBUTIONS:
            raise ValueError(f"{name}: `distribution` must be one of {self._DISTRIBUTIONS}, "
                             f"received distribution={distribution!r}")
        self.scale, self.mode, self.seed = float(scale), mode, check_optional_seed(seed, name)
        self.distribution = "untruncated_normal" if distribution == "normal" else distribution

    def _sample(self, shape, gen):
        fan_in, fan_out = compute_fans(shape)
        n = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2.0}[self.mode]
        variance = self.scale / max(1.0, n)
        if self.distribution == "truncated_normal":
            return _truncated_normal(gen, shape, 0.0, math.sqrt(variance) / _TRUNCATED_STD)
        if self.distribution == "untruncated_normal":
            return gen.normal(0.0, math.sqrt(variance), shape)
        limit = math.sqrt(3.0 * variance)
        return gen.uniform(-limit, limit, shape)

    def get_config(self):
        return {"scale": self.scale, "mode": self.mode, "distribution": self.distribution, "seed": self.seed}


class _Fixed(VarianceScaling):
    """A VarianceScaling with fixed scale/mode/distribution: only `seed` is an argument."""
    _ARGS = None

    def __init__(self, seed=None):
        super().__init__(*self._ARGS, seed=seed)

    def get_config(self):
        return {"seed": self.seed}


class GlorotUniform(_Fixed):
    _ARGS = (1.0, "fan_avg", "uniform")


class GlorotNormal(_Fixed):
    _ARGS = (1.0, "fan_avg", "truncated_normal")


class HeNormal(_Fixed):
    _ARGS = (2.0, "fan_in", "truncated_normal")


class HeUniform(_Fixed):
    _ARGS = (2.0, "fan_in", "uniform")


class LecunNormal(_Fixed):
    _ARGS = (1.0, "fan_in", "truncated_normal")


class LecunUniform(_Fixed):
    _ARGS = (1.0, "fan_in", "uniform")


class Orthogonal(Initializer):
    def __init__(self, gain=1.0, seed=None):
        self.gain, self.seed = float(gain), check_optional_seed(seed, "Orthogonal")

    def _sample(self, shape, gen):
        if len(shape) < 2:
            raise ValueError(f"Orthogonal needs a shape of rank >= 2, received shape={shape}")
        rows, cols = int(np.prod(shape[:-1])), shape[-1]
        a = gen.standard_normal((max(rows, cols), min(rows, cols)))
        q, r = np.linalg.qr(a)
        q *= np.sign(np.diag(r))
        if rows < cols:
            q = q.T
        return self.gain * q.reshape(shape)

    def get_config(self):
        return {"gain": self.gain, "seed": self.seed}


class Identity(Initializer):
    def __init__(self, gain=1.0):
        self.gain = float(gain)

    def _sample(self, shape, gen):
        if len(shape) != 2:
            raise ValueError(f"Identity needs a 2-D shape, received shape={shape}")
        return self.gain * np.eye(*shape)

    def get_config(self):
        return {"gain": self.gain}


REGISTRY = Registry("initializer")
for _cls in (Zeros, Ones, Constant, RandomNormal, RandomUniform, TruncatedNormal, VarianceScaling, GlorotUniform,
             GlorotNormal, HeNormal, HeUniform, LecunNormal, LecunUniform, Orthogonal, Identity):
    REGISTRY.register(_cls)
for _alias, _cls in {"zeros": Zeros, "zero": Zeros, "ones": Ones, "one": Ones, "constant": Constant,
            "random_normal": RandomNormal, "normal": RandomNormal, "random_uniform": RandomUniform,
            "uniform": RandomUniform, "truncated_normal": TruncatedNormal, "variance_scaling": VarianceScaling,
            "glorot_uniform": GlorotUniform, "glorot_normal": GlorotNormal, "he_normal": HeNormal,
            "he_uniform": HeUniform, "lecun_normal": LecunNormal, "lecun_uniform": LecunUniform,
            "orthogonal": Orthogonal, "identity": Identity}.items():
    REGISTRY.alias(_alias, _cls)

# Keras also exposes the snake-case names as callables: `cnnlite.initializers.glorot_uniform`.
zeros, ones, constant = Zeros, Ones, Constant
random_normal, random_uniform, truncated_normal = RandomNormal, RandomUniform, TruncatedNormal
variance_scaling, orthogonal, identity = VarianceScaling, Orthogonal, Identity
glorot_uniform, glorot_normal, he_normal, he_uniform = GlorotUniform, GlorotNormal, HeNormal, HeUniform
lecun_normal, lecun_uniform = LecunNormal, LecunUniform


def serialize(initializer):
    return REGISTRY.serialize(initializer)


def deserialize(config):
    return REGISTRY.deserialize(config, shown="classes")


def get(identifier):
    """A name ('glorot_uniform', 'he_normal', 'zeros', ...), a config dict, an Initializer instance or class."""
    if isinstance(identifier, Initializer):
        return identifier
    if isinstance(identifier, type) and issubclass(identifier, Initializer):
        return identifier()
    if isinstance(identifier, str):
        return REGISTRY.get(identifier, shown="aliases")()
    if isinstance(identifier, dict):
        return deserialize(identifier)
    raise ValueError(f"Could not interpret initializer identifier: {identifier!r}")
