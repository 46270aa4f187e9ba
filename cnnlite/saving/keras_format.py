"""Keras 3 files on plain data: `.keras` archives and `.weights.h5` weights files.

A `.keras` file is a zip of `config.json` (the model spec with its `compile_config`), `metadata.json`
(`keras_version`, ...) and `model.weights.h5`, the weights store that is also the whole of a `.weights.h5` file:

    layers/<snake_case class name>[_<n>]/vars/<i>   layer i-th variable (Dense/Conv2D: 0 kernel, 1 bias); the
                                                    `vars` group's `name` attribute is the layer's name
    optimizer/vars/<i>                              0 iterations (int64), 1 learning rate, then per trainable
                                                    weight its slots (Adam: momentum, velocity)
    vars                                            the model's own variables (none for Sequential)

cnnlite adds a `cnnlite.json` member (a `cnnlite` root attribute in a `.weights.h5` file), which Keras ignores,
with what its exact resume needs beyond that (random states, dropout counters, its optimizer config in full).
"""
import io
import json
import re
from dataclasses import dataclass, field

import numpy as np

from cnnlite.saving import h5, h5_bounded
from cnnlite.saving.archive import ZipReader, write_members

CONFIG = "config.json"
METADATA = "metadata.json"
WEIGHTS = "model.weights.h5"
EXTRAS = "cnnlite.json"
EXTRAS_ATTR = "cnnlite"
_MAX_JSON = 64 << 20


@dataclass
class WeightsData:
    layers: dict = field(default_factory=dict)   # Keras store key ("conv2d_1") -> (layer name or None, [arrays])
    optimizer: dict = None                       # {"iterations", "learning_rate", "slots": [arrays], "name"}
    extras: dict = None


@dataclass
class KerasData:
    config: dict
    metadata: dict
    weights: WeightsData


def snake_case(name):
    name = re.sub(r"\W+", "", name)
    name = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub(r"([a-z])([A-Z])", r"\1_\2", name).lower()


def store_keys(class_names):
    """Keras's weights-store keys for a Sequential's layers: snake case of the class plus a per-class counter."""
    used, keys = {}, []
    for class_name in class_names:
        key = snake_case(class_name)
        if key in used:
            used[key] += 1
            key = f"{key}_{used[key]}"
        else:
            used[key] = 0
        keys.append(key)
    return keys


# --- reading ---------------------------------------------------------------------------------------------------

def _numbered(reader, group):
    keys = reader.keys(group)
    if any(not k.isdigit() for k in keys) or sorted(int(k) for k in keys) != list(range(len(keys))):
        raise reader.error(f"{group.name} should hold datasets 0..n-1, holds {sorted(keys)[:10]}")
    return [reader.get(group, str(i), "dataset") for i in range(len(keys))]


def _parts(data):
    """What the seal of a `.weights.h5` covers: everything read_weights_store returns."""
    return [data.layers, data.optimizer, data.extras]


def read_weights_store(source, label, verify=True):
    """WeightsData from a Keras 3 weights store (a path or a file object); `verify`: check the seal, if any."""
    with h5.Reader(source, label) as reader:
        f = reader.file
        data = WeightsData()
        layers = reader.get(f, "layers", "group")
        if layers is None:
            if reader.get(f, "model_weights") is not None or reader.attr(f, "layer_names") is not None:
                raise reader.error("it is a legacy Keras HDF5 file, not a Keras 3 weights store")
            raise reader.error("no 'layers' group: not a Keras 3 weights file")
        for key in reader.keys(layers):
            group = reader.get(layers, key, "group")
            variables = reader.get(group, "vars", "group")
            if variables is None:
                data.layers[key] = (None, [])
                continue
            name = reader.attr(variables, "name")
            arrays = [reader.array(d, kinds="f", what=f"layers/{key}/vars/{d.name.rsplit('/', 1)[-1]}")
                      for d in _numbered(reader, variables)]
            data.layers[key] = (name if isinstance(name, str) else None,
                                [np.ascontiguousarray(a, dtype=np.float32) for a in arrays])
        optimizer = reader.get(f, "optimizer", "group")
        variables = None if optimizer is None else reader.get(optimizer, "vars", "group")
        if variables is not None:
            datasets = _numbered(reader, variables)
            if len(datasets) >= 2:
                iterations = reader.array(datasets[0], shape=(), kinds="iu", what="optimizer/vars/0 (iterations)")
                lr = reader.array(datasets[1], shape=(), kinds="f", what="optimizer/vars/1 (learning rate)")
                slots = [np.ascontiguousarray(reader.array(d, kinds="f"), dtype=np.float32) for d in datasets[2:]]
                if int(iterations) < 0:
                    raise reader.error(f"optimizer iterations {int(iterations)} is negative")
                data.optimizer = {"iterations": int(iterations), "learning_rate": float(lr), "slots": slots,
                                  "name": reader.attr(variables, "name")}
            elif datasets:
                raise reader.error(f"optimizer/vars holds {len(datasets)} variable, expected iterations and "
                                   "learning rate first")
        extras = reader.json_attr(f, EXTRAS_ATTR)
        data.extras = extras if isinstance(extras, dict) else None
        if verify:
            h5.check_seal(reader, reader.get(f, "vars", "group"), _parts(data), data.extras)
        return data


def read_archive(path):
    """KerasData from a `.keras` zip."""
    with ZipReader(path) as archive:  # duplicate members and implausible declared sizes refused before reading
        config = archive.read_json(CONFIG, min(_MAX_JSON, archive.plausible_size(CONFIG)))
        metadata = archive.read_json(METADATA, min(_MAX_JSON, archive.plausible_size(METADATA))) \
            if METADATA in archive else {}
        if not isinstance(config, dict):
            raise archive.error(f"{CONFIG!r} is not an object")
        if WEIGHTS not in archive:
            raise archive.error(f"the archive has no {WEIGHTS!r}, so it is not a Keras 3 file")
        store, label = archive.read_bytes(WEIGHTS), f"{path}::{WEIGHTS}"
        # a crafted store with valid CRCs could still make the HDF5 library hang: bounded like an .h5 file
        h5_bounded.preflight(label, lambda: read_weights_store(io.BytesIO(store), label), len(store))
        weights = read_weights_store(io.BytesIO(store), label)
        if EXTRAS in archive:
            extras = archive.read_json(EXTRAS, min(_MAX_JSON, archive.plausible_size(EXTRAS)))
            weights.extras = extras if isinstance(extras, dict) else None
        archive.verify_members(skip=(CONFIG, METADATA, WEIGHTS, EXTRAS))
        return KerasData(config, metadata if isinstance(metadata, dict) else {}, weights)


# --- writing ---------------------------------------------------------------------------------------------------

def write_weights_store(target, layers, optimizer=None, model_name="sequential", extras=None, sealed=False):
    """Write a Keras 3 weights store. `layers`: [(store key, layer name, [arrays])] in model order; `optimizer`:
    {"name", "iterations", "learning_rate", "slots"} or None. `sealed` (a `.weights.h5` file; inside a `.keras`
    zip the member's CRC-32 does this): the SHA-256 of what read_weights_store returns goes into attribute
    h5.CHECKSUM_ATTR of /vars, away from the extras in the root's header."""
    h5py = h5.import_h5py(target, "write")
    if sealed and extras is not None:
        extras = dict(extras, **{h5.SEALED_KEY: f"/vars/{h5.CHECKSUM_ATTR}"})
    with h5py.File(target, "w", track_order=False) as f:
        group = f.create_group("layers")
        for key, name, arrays in layers:
            variables = group.create_group(key).create_group("vars")
            variables.attrs["name"] = name
            for i, array in enumerate(arrays):
                h5.write_dataset(variables, str(i), np.ascontiguousarray(array, dtype=np.float32))
        if optimizer is not None:
            variables = f.create_group("optimizer").create_group("vars")
            variables.attrs["name"] = optimizer["name"]
            h5.write_dataset(variables, "0", np.asarray(optimizer["iterations"], dtype=np.int64))
            h5.write_dataset(variables, "1", np.asarray(optimizer["learning_rate"], dtype=np.float32))
            for i, array in enumerate(optimizer["slots"]):
                h5.write_dataset(variables, str(i + 2), np.ascontiguousarray(array, dtype=np.float32))
        f.create_group("vars").attrs["name"] = model_name
        if extras is not None:
            f.attrs[EXTRAS_ATTR] = json.dumps(extras, sort_keys=True, allow_nan=False)
    if sealed:
        h5.seal(target, lambda source: _parts(read_weights_store(source, "the file being written", verify=False)),
                "vars")


def write_archive(f, config, metadata, weights_bytes, extras=None):
    """Write a `.keras` zip to the binary file `f` (members in Keras's order, then cnnlite's extras)."""
    members = [(METADATA, json.dumps(metadata)), (CONFIG, json.dumps(config, allow_nan=False)),
               (WEIGHTS, weights_bytes)]
    if extras is not None:
        members.append((EXTRAS, json.dumps(extras, indent=1, sort_keys=True, allow_nan=False)))
    write_members(f, members)


def weights_store_bytes(layers, optimizer=None, model_name="sequential", extras=None, sealed=False):
    buffer = io.BytesIO()
    write_weights_store(buffer, layers, optimizer, model_name, extras, sealed)
    return buffer.getvalue()
