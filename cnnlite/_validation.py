"""Argument validators shared by every module: one rule for what counts as an integer or a bool, one wording.

An integer is a Python or NumPy integer, never a bool (`True` is no batch size). Each check returns the value as a
plain Python object and raises ValueError whose message names the owner, the argument and what was received:
  "Dense: `units` must be a positive integer, received units=0"
or, with `plain=True`, the wording of the callbacks and utilities ("EarlyStopping: patience must be a
non-negative integer, got -1").

A leaf module: it imports nothing from cnnlite.
"""
import numbers

import numpy as np

__all__ = ["is_int", "is_bool", "check_int", "check_positive_int", "check_nonneg_int", "check_optional_seed",
           "check_bool", "invalid", "generator_from_state"]


def is_int(value):
    """True for a Python or NumPy integer that is not a bool."""
    return isinstance(value, (numbers.Integral, np.integer)) and not isinstance(value, (bool, np.bool_))


def is_bool(value):
    return isinstance(value, (bool, np.bool_))


def invalid(owner, name, requirement, value, plain=False, error=ValueError):
    """The exception for argument `name` of `owner` that is not `requirement` (e.g. "a positive integer")."""
    prefix = f"{owner}: " if owner else ""
    if plain:
        return error(f"{prefix}{name} must be {requirement}, got {value!r}")
    return error(f"{prefix}`{name}` must be {requirement}, received {name}={value!r}")


def _int_requirement(minimum):
    if minimum == 1:
        return "a positive integer"
    if minimum == 0:
        return "a non-negative integer"
    return "an integer" if minimum is None else f"an integer >= {minimum}"


def check_int(value, name, owner=None, minimum=None, allow_none=False, plain=False):
    """`value` as an int (or None when `allow_none`); ValueError unless an integer >= `minimum`."""
    if value is None and allow_none:
        return None
    if not is_int(value) or (minimum is not None and value < minimum):
        requirement = _int_requirement(minimum)
        raise invalid(owner, name, f"None or {requirement}" if allow_none else requirement, value, plain)
    return int(value)


def check_positive_int(value, name, owner=None, plain=False):
    return check_int(value, name, owner, minimum=1, plain=plain)


def check_nonneg_int(value, name, owner=None, plain=False):
    return check_int(value, name, owner, minimum=0, plain=plain)


def check_optional_seed(value, owner, name="seed"):
    """None or a non-negative integer (a random seed)."""
    return check_int(value, name, owner, minimum=0, allow_none=True)


def check_bool(value, name, owner=None, plain=False):
    if not is_bool(value):
        raise invalid(owner, name, "a bool", value, plain)
    return bool(value)


def generator_from_state(state, name, owner=None):
    """A NumPy Generator (default bit generator) whose state is `state` (a `bit_generator.state` dict); ValueError
    for any other state, and nothing of the caller's changes."""
    generator = np.random.default_rng()
    kind = type(generator.bit_generator).__name__
    if not isinstance(state, dict) or state.get("bit_generator") != kind:
        raise invalid(owner, name, f"a {kind} bit-generator state dict", state)
    try:
        generator.bit_generator.state = state
    except (TypeError, ValueError, KeyError, OverflowError) as e:
        raise invalid(owner, name, f"a valid {kind} bit-generator state ({e})", state) from None
    return generator
