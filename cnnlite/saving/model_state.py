"""What every file format saves and restores beyond the weights, reached only through a model's public methods:
the random state that decides how training continues (`training_state` / `restore_training_state`) and the
optimizer state (`optimizer_mismatch` / `restore_optimizer`). Shared by cnnlite_format.py and the Keras formats
(keras_files.py), so both resume training bit for bit. Problems are reported through `source.error(problem)`
(a ValueError naming the file)."""
import numpy as np

__all__ = ["training_state", "restore_training_state", "optimizer_mismatch", "restore_optimizer", "is_count"]


def is_count(value):
    """A non-negative int (not a bool)."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def training_state(model):
    """Random state outside the config that decides how training continues: the model's seed and its initialiser
    and shuffling generators (`model.get_rng_state()`), and the state of each layer that has one (dropout: mask
    seed and step counter, `layer.get_rng_state()`), by layer index. Saving it makes a loaded model train exactly as
    the saved one would have."""
    rng = model.get_rng_state()
    state = {
        "seed": None if rng is None else rng["seed"],
        "init_rng": None if rng is None else rng["init_rng"],
        "shuffle_rng": None if rng is None else rng["shuffle_rng"],
        "layers": {},
    }
    for index, layer in enumerate(model.layers):
        layer_state = layer.get_rng_state()
        if layer_state is not None:
            state["layers"][str(index)] = {"seed": layer_state["seed"], "step": int(layer_state["step"])}
    return state


def _check_generator_state(state, source, what):
    """The file's `what` generator state must be one NumPy's default bit generator accepts (checked on a throwaway
    generator, so nothing of the model changes when it is not)."""
    generator = np.random.default_rng()
    if not isinstance(state, dict) or state.get("bit_generator") != type(generator.bit_generator).__name__:
        raise source.error(f"invalid {what} generator state in the file")
    try:
        generator.bit_generator.state = state
    except (TypeError, ValueError, KeyError, OverflowError) as e:
        raise source.error(f"invalid {what} generator state in the file ({e})") from None


def restore_training_state(model, state, source, strict=True):
    """Put back what `training_state` saved, through `model.set_rng_state` and each layer's `set_rng_state`
    (checked first, with messages naming the file). With strict=False (loading weights into a possibly different
    architecture) layer entries that do not name a layer with random state are skipped."""
    if state is None:
        return
    if not isinstance(state, dict) or not isinstance(state.get("layers", {}), dict):
        raise source.error("'training_state' must be an object")
    if state.get("seed") is not None:
        if not is_count(state["seed"]):
            raise source.error(f"invalid model seed {state['seed']!r} in the file")
        _check_generator_state(state.get("init_rng"), source, "initialiser")
        _check_generator_state(state.get("shuffle_rng"), source, "shuffling")
        model.set_rng_state({"seed": state["seed"], "init_rng": state["init_rng"],
                             "shuffle_rng": state["shuffle_rng"]})
    layer_list = model.layers
    for key, layer_state in state.get("layers", {}).items():
        index = int(key) if key.isdigit() else -1
        if not 0 <= index < len(layer_list) or layer_list[index].get_rng_state() is None:
            if not strict:
                continue
            raise source.error(f"the training state names layer {key!r}, which is not a dropout layer of the model")
        if not isinstance(layer_state, dict) or not is_count(layer_state.get("step")) or not (
                layer_state.get("seed") is None or is_count(layer_state.get("seed"))):
            raise source.error(f"invalid training state for layer {key!r}: {layer_state!r}")
        layer_list[index].set_rng_state({"seed": layer_state["seed"], "step": layer_state["step"]})


def optimizer_mismatch(model, class_name, built, arrays):
    """Why saved optimizer state (of a `class_name` optimizer, `built` or not, slot `arrays` in
    `Optimizer.variables()` order) cannot go into `model.optimizer` (a sentence), or None if it fits."""
    optimizer = model.optimizer
    if class_name is not None and type(optimizer).__name__ != class_name:
        return f"it holds state for a {class_name} optimizer but the model uses {type(optimizer).__name__}"
    if not built:
        return None  # saved before the first step: only the iteration count to restore
    expected = optimizer.variable_shapes(model.trainable_weights)
    got = [tuple(a.shape) for a in arrays]
    if expected != got:
        return (f"the model's optimizer keeps {len(expected)} state arrays with shapes {expected}, "
                f"the file has {len(got)} with shapes {got}")
    return None


def restore_optimizer(model, built, arrays, iterations):
    """Build the model's optimizer as fit would (`model.build_optimizer()`) and give it the saved slots and
    iteration count (check with `optimizer_mismatch` first)."""
    optimizer = model.optimizer
    if built:
        model.build_optimizer()
        optimizer.set_variables(arrays)
    optimizer.set_iterations(iterations)
