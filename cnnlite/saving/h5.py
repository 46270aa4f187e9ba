"""Safe HDF5 access through h5py: open with checks, read datasets checked against the file, write with fletcher32.

Reading never trusts a declared size: a dataset's shape and dtype are checked against what the caller expects and its
storage size against the bytes the file really holds before anything is read. Only numeric datasets and string
attributes are read (h5py never unpickles; object/reference/vlen dtypes are refused).

HDF5 checksums only the datasets (fletcher32, which cnnlite writes); attributes, names and the structure have none,
so damage there could load a different model. Files cnnlite writes are therefore sealed: `seal` reads the file back
with its own reader and stores the SHA-256 of what the reader returned (`content_digest`) as the attribute
CHECKSUM_ATTR; the file's cnnlite extras say that a checksum belongs to it (SEALED_KEY), so hiding the attribute is
damage too. `check_seal` compares on every read. Files without cnnlite's extras (Keras wrote them) have no seal and
are read as they are.
"""
import hashlib
import json
import os
import re

import numpy as np

HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
CHECKSUM_ATTR = "cnnlite_sha256"
SEALED_KEY = "hdf5_sha256"  # in the extras: where CHECKSUM_ATTR is
_MAX_ATTR_BYTES = 64 << 20


def import_h5py(path, what="read"):
    """h5py, or ImportError naming `path` (h5py is a dependency of cnnlite; imported only for HDF5 files)."""
    try:
        import h5py
    except ImportError:  # pragma: no cover - h5py is a dependency
        raise ImportError(f"cannot {what} {path!r}: Keras HDF5 files need h5py (pip install h5py)") from None
    return h5py


def is_hdf5(path):
    try:
        with open(path, "rb") as f:
            return f.read(8) == HDF5_SIGNATURE
    except OSError:
        return False


class Reader:
    """An open HDF5 file (a path or a binary file object) whose errors are ValueErrors naming `label`."""

    def __init__(self, source, label):
        self.label = label
        h5py = import_h5py(label)
        self.h5py = h5py
        try:
            self.file = h5py.File(source, "r")
        except (OSError, ValueError) as e:
            raise self.error(f"not a readable HDF5 file (truncated, corrupt or foreign: {e})") from None
        self.size = os.path.getsize(source) if isinstance(source, (str, os.PathLike)) else None
        if self.size is None:
            pos = source.tell()
            source.seek(0, os.SEEK_END)
            self.size = source.tell()
            source.seek(pos)

    def error(self, problem):
        return ValueError(f"cannot load {self.label!r}: {problem}")

    def close(self):
        self.file.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def get(self, group, name, kind=None):
        """`group[name]` (a group or dataset) or None; `kind` "group"/"dataset" checks what it is."""
        try:
            if name not in group:
                return None
            obj = group[name]
        except (KeyError, OSError, ValueError, RuntimeError) as e:
            raise self.error(f"cannot read {group.name.rstrip('/')}/{name} ({e})") from None
        if kind == "group" and not isinstance(obj, self.h5py.Group):
            raise self.error(f"{obj.name} is not an HDF5 group")
        if kind == "dataset" and not isinstance(obj, self.h5py.Dataset):
            raise self.error(f"{obj.name} is not an HDF5 dataset")
        return obj

    def keys(self, group):
        try:
            return list(group.keys())
        except (OSError, ValueError, RuntimeError) as e:
            raise self.error(f"cannot list {group.name} ({e})") from None

    def array(self, dataset, shape=None, kinds="f", what=None):
        """The dataset as a NumPy array after checking dtype (`kinds`: allowed dtype kinds), shape and size."""
        what = what or dataset.name
        try:  # h5py builds these from the file's datatype and dataspace messages, which may be damaged
            dtype, shape_found, compression = dataset.dtype, tuple(dataset.shape), dataset.compression
        except (OSError, ValueError, RuntimeError, TypeError, KeyError) as e:  # e.g. "Insufficient precision ..."
            raise self.error(f"{what} has an unreadable datatype or shape ({e})") from None
        if dtype.kind not in kinds or dtype.fields is not None or dtype.subdtype is not None:
            raise self.error(f"{what} has dtype {dtype}, expected {'float' if kinds == 'f' else 'integer'} numbers")
        if dtype.kind == "f" and dtype.itemsize not in (2, 4, 8):
            raise self.error(f"{what} has dtype {dtype}, expected float32")
        if shape is not None and shape_found != tuple(shape):
            raise self.error(f"{what} has shape {shape_found}, expected {tuple(shape)}")
        nbytes = int(np.prod(shape_found, dtype=np.int64)) * dtype.itemsize
        try:
            stored = dataset.id.get_storage_size()
        except Exception:  # noqa: BLE001 - h5py raises several kinds here
            stored = None
        if nbytes and compression is None and stored is not None and stored < nbytes:
            raise self.error(f"{what} declares {nbytes} bytes but the file stores {stored} (truncated?)")
        if nbytes > self.size * 1100 + (1 << 20):  # even compressed data cannot expand beyond this
            raise self.error(f"{what} declares {nbytes} bytes, impossible in a file of {self.size} bytes")
        try:
            return dataset[()]
        except (OSError, ValueError, RuntimeError, TypeError) as e:
            raise self.error(f"{what} cannot be read: corrupt or truncated ({e})") from None

    def attr(self, obj, name, default=None):
        """A string, number or list-of-strings attribute (bytes decoded), or `default`."""
        try:
            if name not in obj.attrs:
                return default
            value = obj.attrs[name]
        except (OSError, ValueError, RuntimeError, TypeError, KeyError) as e:
            raise self.error(f"attribute {name!r} of {obj.name} cannot be read ({e})") from None
        return _plain(value, self.error, f"attribute {name!r} of {obj.name}")

    def string_list(self, obj, name):
        """Keras's (possibly chunked: name0, name1, ...) list-of-strings attribute; [] when absent."""
        value = self.attr(obj, name)
        if value is None:
            value, chunk = [], 0
            while self.attr(obj, f"{name}{chunk}") is not None:
                value.extend(_as_list(self.attr(obj, f"{name}{chunk}")))
                chunk += 1
            return value
        return _as_list(value)

    def json_attr(self, obj, name):
        value = self.attr(obj, name)
        if value is None:
            return None
        if not isinstance(value, str):
            raise self.error(f"attribute {name!r} is not a JSON string")
        if len(value) > _MAX_ATTR_BYTES:
            raise self.error(f"attribute {name!r} is larger than {_MAX_ATTR_BYTES} bytes")
        try:
            return json.loads(value)
        except json.JSONDecodeError as e:
            raise self.error(f"attribute {name!r} is not valid JSON ({e})") from None


def _as_list(value):
    if isinstance(value, str):
        # Keras 3's legacy writer stores some name lists as the str() of a NumPy array: "['a' 'b'\n 'c']"
        text = value.strip()
        if text.startswith("[") and text.endswith("]"):
            return [a or b for a, b in re.findall(r"'([^']*)'|\"([^\"]*)\"", text)]
        return [value]
    return list(value)


def _plain(value, error, what):
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, str):
        return value
    if isinstance(value, np.ndarray):
        if value.dtype.kind in "SUO":
            out = []
            for item in value.ravel().tolist():
                if isinstance(item, bytes):
                    item = item.decode("utf-8", "replace")
                if not isinstance(item, str):
                    raise error(f"{what} holds a non-string item {type(item).__name__}")
                out.append(item)
            return out
        if value.dtype.kind in "biuf":
            return value.tolist()
        raise error(f"{what} has an unsupported type {value.dtype}")
    if isinstance(value, (np.integer, np.floating, np.bool_, int, float)):
        return value.item() if hasattr(value, "item") else value
    raise error(f"{what} has an unsupported type {type(value).__name__}")


def write_dataset(group, name, array):
    """A dataset with HDF5's fletcher32 checksum (chunked storage; scalars cannot be chunked, they stay plain)."""
    array = np.asarray(array)
    if array.ndim == 0 or array.size == 0:
        return group.create_dataset(name, data=array)
    return group.create_dataset(name, data=array, fletcher32=True, chunks=array.shape)


def string_array(names):
    """A list of str as the fixed-length bytes array Keras writes for weight_names/layer_names."""
    encoded = [n.encode("utf-8") for n in names]
    return np.array(encoded, dtype=f"S{max([len(e) for e in encoded] + [1])}")


# --- the seal of files cnnlite writes --------------------------------------------------------------------------

def content_digest(parts):
    """SHA-256 (hex) of plain data as a reader returns it: dicts, lists, str, numbers, None and arrays (dtype,
    shape and bytes), in a form that tells every type and boundary apart."""
    digest = hashlib.sha256()
    _feed(digest, parts)
    return digest.hexdigest()


def _feed(digest, obj):
    if isinstance(obj, np.ndarray):
        digest.update(f"a{obj.dtype.str}{obj.shape}".encode())
        digest.update(np.ascontiguousarray(obj).tobytes())
    elif isinstance(obj, dict):
        digest.update(f"d{len(obj)}".encode())
        for key in sorted(obj, key=repr):
            _feed(digest, key)
            _feed(digest, obj[key])
    elif isinstance(obj, (list, tuple)):
        digest.update(f"l{len(obj)}".encode())
        for item in obj:
            _feed(digest, item)
    else:
        text = f"{type(obj).__name__}:{obj!r}".encode()
        digest.update(f"s{len(text)}:".encode() + text)


def seal(target, read, holder):
    """Add CHECKSUM_ATTR to group `holder` of the closed HDF5 file `target` (a path or a binary file object): the
    digest of `read(target)`, the reader's parts read back from what was just written (so writer and reader agree
    by construction)."""
    parts = read(target)
    h5py = import_h5py(target, "write")
    with h5py.File(target, "r+") as f:
        f[holder].attrs[CHECKSUM_ATTR] = content_digest(parts)


def check_seal(reader, holder, parts, extras):
    """ValueError naming the file unless `parts` match the seal in group `holder` (None: no such group); a file
    without seal passes unless its `extras` say cnnlite sealed it."""
    stored = None if holder is None else reader.attr(holder, CHECKSUM_ATTR)
    if stored is None:
        if isinstance(extras, dict) and extras.get(SEALED_KEY) is not None:
            raise reader.error(f"cnnlite wrote it with a checksum ({CHECKSUM_ATTR!r}), which is missing: damaged")
        return
    if stored != content_digest(parts):
        raise reader.error(f"its content does not match the SHA-256 checksum cnnlite wrote with it "
                           f"({CHECKSUM_ATTR!r}): damaged")
