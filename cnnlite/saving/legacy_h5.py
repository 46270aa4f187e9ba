"""Legacy Keras HDF5 files (`.h5`) on plain data, as Keras 2, tf.keras and Keras 3 write them.

    /                    attrs model_config (JSON), training_config (JSON, when compiled), keras_version, backend
    /model_weights       attr layer_names; one group per layer with attr weight_names, each a dataset path in it
    /optimizer_weights   attr weight_names (optimizer variables, in the optimizer's order), when saved
cnnlite writes its optimizer state under `/cnnlite_optimizer_weights` (same layout) instead: Keras 3.15 restores an
`optimizer_weights` group but then refuses to train ("Unknown variable ... the optimizer can only be called for the
variables it was originally built with"), even from its own files; under another name Keras starts a fresh optimizer
and trains, and cnnlite still resumes exactly. Both names are read.
A weights-only legacy file (Keras 2 `save_weights('w.h5')`) is the `model_weights` group at the root. Name lists
may be split over `weight_names0`, `weight_names1`, ... (HDF5's attribute size limit), as Keras does.
cnnlite seals the files it writes (h5.seal: the SHA-256 of what `read` returns, attribute h5.CHECKSUM_ATTR of
/model_weights, away from the extras in the root's header, so one damaged spot cannot hide both).
"""
import json
import re
from dataclasses import dataclass, field

import numpy as np

from cnnlite.saving import h5

EXTRAS_ATTR = "cnnlite_extras"
OPTIMIZER_GROUP = "cnnlite_optimizer_weights"


@dataclass
class LegacyData:
    model_config: dict = None
    training_config: dict = None
    layers: list = field(default_factory=list)   # [(layer name, [arrays])] for every layer listed, in order
    optimizer: dict = None                       # {"iterations", "learning_rate", "slots" (Keras 3 order), "name"}
    keras_version: str = None
    extras: dict = None


def _slot_kind(name):
    """('iterations' | 'learning_rate' | slot kind, weight part) of an optimizer variable name."""
    base = name.split(":")[0]
    last = base.rsplit("/", 1)[-1]
    if last in ("iter", "iteration", "iterations"):
        return "iterations"
    if last in ("learning_rate", "lr"):
        return "learning_rate"
    for kind, suffixes in (("m", ("/m", "_momentum", "/momentum")), ("v", ("/v", "_velocity", "/rms", "/velocity")),
                           ("vhat", ("/vhat", "_velocity_hat"))):
        if any(base.endswith(s) for s in suffixes):
            return kind
    return None


def _read_optimizer(reader, group):
    names = reader.string_list(group, "weight_names")
    iterations = lr = None
    kinds, order = {}, []
    for name in names:
        dataset = reader.get(group, name, "dataset")
        if dataset is None:
            raise reader.error(f"optimizer_weights names {name!r}, which the file does not hold")
        kind = _slot_kind(name)
        if kind == "iterations":
            iterations = int(reader.array(dataset, shape=(), kinds="iuf"))
        elif kind == "learning_rate":
            lr = float(reader.array(dataset, shape=(), kinds="f"))
        elif kind is None:
            return None  # an optimizer variable cnnlite cannot place: the optimizer state is not used
        else:
            if kind not in kinds:
                kinds[kind] = []
                order.append(kind)
            kinds[kind].append(np.ascontiguousarray(reader.array(dataset, kinds="f"), dtype=np.float32))
    counts = {len(v) for v in kinds.values()}
    if len(counts) > 1:
        raise reader.error(f"optimizer_weights hold unequal numbers of slots per kind: "
                           f"{ {k: len(v) for k, v in kinds.items()} }")
    count = counts.pop() if counts else 0
    slots = [kinds[kind][i] for i in range(count) for kind in order]  # interleave per weight, as Keras 3 orders
    if iterations is None:
        return None
    return {"iterations": iterations, "learning_rate": lr, "slots": slots,
            "name": names[0].split("/")[0] if names else None}


def _parts(data):
    """What the seal covers: everything `read` returns."""
    return [data.keras_version, data.model_config, data.training_config, data.layers, data.optimizer, data.extras]


def read(source, label=None, verify=True):
    """LegacyData from a path or binary file object (`label` names it in errors); `verify`: check the seal."""
    label = source if label is None else label
    with h5.Reader(source, label) as reader:
        f = reader.file
        data = LegacyData()
        data.keras_version = reader.attr(f, "keras_version")
        data.model_config = reader.json_attr(f, "model_config")
        data.training_config = reader.json_attr(f, "training_config")
        extras = reader.json_attr(f, EXTRAS_ATTR)
        data.extras = extras if isinstance(extras, dict) else None
        weights = reader.get(f, "model_weights", "group")
        if weights is None:
            if reader.attr(f, "layer_names") is None:
                if reader.get(f, "layers", "group") is not None:
                    raise reader.error("it is a Keras 3 weights file, not a legacy HDF5 model")
                raise reader.error("neither 'model_weights' nor 'layer_names': not a Keras HDF5 file")
            weights = f
        for layer_name in reader.string_list(weights, "layer_names"):
            group = reader.get(weights, layer_name, "group")
            if group is None:
                raise reader.error(f"layer_names lists {layer_name!r}, which the file does not hold")
            arrays = []
            for weight_name in reader.string_list(group, "weight_names"):
                dataset = reader.get(group, weight_name, "dataset")
                if dataset is None:
                    raise reader.error(f"layer {layer_name!r} names weight {weight_name!r}, which it does not hold")
                arrays.append(np.ascontiguousarray(reader.array(dataset, kinds="f"), dtype=np.float32))
            data.layers.append((layer_name, arrays))
        optimizer = reader.get(f, "optimizer_weights", "group")
        if optimizer is None:
            optimizer = reader.get(f, OPTIMIZER_GROUP, "group")
        if optimizer is not None:
            data.optimizer = _read_optimizer(reader, optimizer)
        if verify:
            h5.check_seal(reader, weights, _parts(data), data.extras)
        return data


def write(target, model_config, training_config, layers, optimizer=None, extras=None, keras_version="3.0.0"):
    """`layers`: [(layer name, [(weight name, array)])]; `optimizer`: {"name", "iterations", "learning_rate",
    "slot_names", "slots"} in Keras 3's variable order. The file is sealed (see h5.seal)."""
    h5py = h5.import_h5py(target, "write")
    if extras is not None:
        extras = dict(extras, **{h5.SEALED_KEY: f"/model_weights/{h5.CHECKSUM_ATTR}"})
    with h5py.File(target, "w") as f:
        f.attrs["backend"] = "tensorflow"
        f.attrs["keras_version"] = keras_version
        f.attrs["model_config"] = json.dumps(model_config, allow_nan=False)
        if training_config is not None:
            f.attrs["training_config"] = json.dumps(training_config, allow_nan=False)
        if extras is not None:
            f.attrs[EXTRAS_ATTR] = json.dumps(extras, sort_keys=True, allow_nan=False)
        weights = f.create_group("model_weights")
        weights.attrs["backend"] = "tensorflow"
        weights.attrs["keras_version"] = keras_version
        weights.attrs["layer_names"] = h5.string_array([name for name, _ in layers])
        for name, named_arrays in layers:
            group = weights.create_group(name)
            group.attrs["weight_names"] = h5.string_array([n for n, _ in named_arrays]) if named_arrays else \
                np.array([], dtype="S1")
            for weight_name, array in named_arrays:
                h5.write_dataset(group, weight_name, np.ascontiguousarray(array, dtype=np.float32))
        if optimizer is not None:
            group = f.create_group(OPTIMIZER_GROUP)
            prefix = optimizer["name"]
            names = [f"{prefix}/iteration", f"{prefix}/learning_rate"] + list(optimizer["slot_names"])
            group.attrs["weight_names"] = h5.string_array(names)
            h5.write_dataset(group, names[0], np.asarray(optimizer["iterations"], dtype=np.int64))
            h5.write_dataset(group, names[1], np.asarray(optimizer["learning_rate"], dtype=np.float32))
            for name, array in zip(names[2:], optimizer["slots"]):
                h5.write_dataset(group, name, np.ascontiguousarray(array, dtype=np.float32))
    h5.seal(target, lambda source: _parts(read(source, "the file being written", verify=False)), "model_weights")


def slot_names(prefix, weight_paths, kinds):
    """Keras 3's optimizer variable names: '<prefix>/<path with _>_<kind>' interleaved per weight."""
    return [f"{prefix}/{re.sub(r'[/:]', '_', path)}_{kind}" for path in weight_paths for kind in kinds]
