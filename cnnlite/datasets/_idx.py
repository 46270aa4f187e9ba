"""Readers for the two on-disk formats of MNIST-like datasets: IDX files (raw or gzip) and Keras-style .npz.

Every reader validates what it reads and raises ValueError naming the file and the problem; nothing here
returns an array it has not checked.
"""
import gzip
import os
import struct
import zipfile
import zlib

import numpy as np

from cnnlite._npy import read_npy_header

_GZIP_MAGIC = b"\x1f\x8b"
_IDX_UINT8 = 0x08
_IDX_TYPE_NAMES = {0x08: "uint8", 0x09: "int8", 0x0B: "int16", 0x0C: "int32", 0x0D: "float32", 0x0E: "float64"}
_CHUNK = 1 << 22


def _is_gzip(path):
    with open(path, "rb") as probe:
        return probe.read(2) == _GZIP_MAGIC


def _read_exact(stream, nbytes):
    data = stream.read(nbytes)
    return data if data is not None else b""


def _readinto_exact(stream, array):
    """Fill `array` (uint8, contiguous) from `stream`; return the number of bytes actually read."""
    view = memoryview(array).cast("B")
    filled = 0
    while filled < len(view):
        n = stream.readinto(view[filled:filled + _CHUNK])
        if not n:
            break
        filled += n
    return filled


def _read_bounded(stream, nbytes):
    """Up to `nbytes` from `stream` into a bytearray that grows only as data really arrives, so a header that lies
    about the size of a compressed payload costs what the payload holds, not what the header claims."""
    buf = bytearray()
    while len(buf) < nbytes:
        chunk = stream.read(min(_CHUNK, nbytes - len(buf)))
        if not chunk:
            break
        buf += chunk
    return buf


def _dims_text(dims):
    return " x ".join(map(str, dims))


def read_idx(path, item_shape=()):
    """Read an IDX file of unsigned bytes (gzip-compressed or not) into a new, writable uint8 array.

    `item_shape` is the expected shape of one item: () for labels, (28, 28) for images. Checks the magic number,
    the element type, the number of dimensions, the item shape, and that the payload has exactly prod(dims) bytes:
    no fewer (truncated) and no more (trailing garbage).
    """
    path = os.fspath(path)
    ndim = 1 + len(item_shape)
    compressed = _is_gzip(path)
    file_size = os.path.getsize(path)
    try:
        with (gzip.open(path, "rb") if compressed else open(path, "rb")) as stream:
            magic = _read_exact(stream, 4)
            if len(magic) < 4:
                raise ValueError(f"{path}: not an IDX file: {len(magic)} bytes where a 4-byte header was expected")
            if magic[0] != 0 or magic[1] != 0:
                raise ValueError(f"{path}: not an IDX file: magic number starts with 0x{magic[:2].hex()}, "
                                 f"expected 0x0000")
            if magic[2] != _IDX_UINT8:
                kind = _IDX_TYPE_NAMES.get(magic[2], "unknown")
                raise ValueError(f"{path}: IDX element type 0x{magic[2]:02x} ({kind}), expected 0x08 (uint8)")
            if magic[3] != ndim:
                raise ValueError(f"{path}: IDX file has {magic[3]} dimensions, expected {ndim}")
            raw_dims = _read_exact(stream, 4 * ndim)
            if len(raw_dims) < 4 * ndim:
                raise ValueError(f"{path}: truncated IDX header: {4 + len(raw_dims)} bytes, "
                                 f"expected {4 + 4 * ndim}")
            dims = struct.unpack(f">{ndim}I", raw_dims)
            if dims[1:] != tuple(item_shape):
                raise ValueError(f"{path}: IDX items have shape {_dims_text(dims[1:])}, "
                                 f"expected {_dims_text(item_shape)}")
            payload = int(np.prod(dims, dtype=np.int64))
            # Refuse to allocate what the file cannot possibly hold (deflate expands at most ~1032:1).
            capacity = file_size * 1100 if compressed else file_size - 4 - 4 * ndim
            if payload > capacity:
                raise ValueError(f"{path}: truncated IDX data: header promises {payload} bytes "
                                 f"({_dims_text(dims)}) but the file is only {file_size} bytes")
            if compressed:  # the claim is bounded only loosely by the file size: allocate as data arrives
                buf = _read_bounded(stream, payload)
                got = len(buf)
                out = np.frombuffer(buf, dtype=np.uint8).reshape(dims) if got == payload else None
            else:
                out = np.empty(dims, dtype=np.uint8)
                got = _readinto_exact(stream, out)
            if got < payload:
                raise ValueError(f"{path}: truncated IDX data: header promises {payload} bytes "
                                 f"({_dims_text(dims)}) but only {got} follow")
            if _read_exact(stream, 1):
                raise ValueError(f"{path}: IDX file has trailing bytes after the {payload} bytes of data "
                                 f"its header ({_dims_text(dims)}) describes")
            return out
    except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
        raise ValueError(f"{path}: corrupt or truncated gzip stream ({exc})") from None


NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test")


def _read_npy_member(path, zf, info, archive_size):
    """One .npy member of an open zip: its header checked against the bytes the member holds before anything is
    allocated, then the data (the zip's CRC-32 checked at the end)."""
    name = info.filename
    if info.compress_size > archive_size:
        raise ValueError(f"{path}: member {name} claims {info.compress_size} compressed bytes but the archive has "
                         f"only {archive_size}")
    ratio = 1 if info.compress_type == zipfile.ZIP_STORED else 1100  # deflate expands at most ~1032:1
    if info.file_size > info.compress_size * ratio + 1024:
        raise ValueError(f"{path}: member {name} claims {info.file_size} bytes from {info.compress_size} "
                         f"compressed bytes: impossible")
    with zf.open(info) as member:
        try:
            shape, fortran, dtype = read_npy_header(member)
        except ValueError as exc:
            raise ValueError(f"{path}: member {name}: bad .npy header ({exc})") from None
        if dtype.hasobject:
            raise ValueError(f"{path}: unreadable .npz archive: member {name} holds Python objects ({dtype}), "
                             f"which only pickle could load (refused)")
        count = 1
        for d in shape:
            count *= int(d)
        header = member.tell()
        need = count * dtype.itemsize
        if header + need != info.file_size:
            raise ValueError(f"{path}: member {name}: its header declares shape {shape} of {dtype} ({need} bytes) "
                             f"but the member holds {info.file_size - header} bytes of data")
        buf = _read_bounded(member, need)
        if len(buf) < need:
            raise ValueError(f"{path}: member {name} truncated: {len(buf)} of {need} bytes")
        if member.read(1):
            raise ValueError(f"{path}: member {name} has bytes after its data")
    flat = np.frombuffer(buf, dtype=dtype, count=count)
    if dtype.itemsize > 1:
        flat = flat.copy()  # aligned
    return flat.reshape(shape, order="F" if fortran else "C")


def read_npz(path):
    """Read a Keras-style dataset .npz (arrays x_train, y_train, x_test, y_test) without unpickling anything, each
    member's .npy header checked against the bytes it holds before anything is allocated."""
    path = os.fspath(path)
    with open(path, "rb") as probe:
        if probe.read(2) != b"PK":
            raise ValueError(f"{path}: not an .npz archive (a zip file of .npy arrays)")
    archive_size = os.path.getsize(path)
    try:
        with zipfile.ZipFile(path) as zf:
            infos = {}
            for info in zf.infolist():
                key = info.filename[:-4] if info.filename.endswith(".npy") else info.filename
                if key in infos:
                    raise ValueError(f"{path}: .npz archive holds {key} twice")
                infos[key] = info
            missing = [key for key in NPZ_KEYS if key not in infos]
            if missing:
                raise ValueError(f"{path}: .npz archive lacks {', '.join(missing)} "
                                 f"(has {', '.join(infos) or 'no arrays'})")
            return tuple(_read_npy_member(path, zf, infos[key], archive_size) for key in NPZ_KEYS)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, zlib.error, NotImplementedError, OverflowError,
            struct.error, OSError, RuntimeError) as exc:
        # OSError: zipfile seeking to an offset a damaged directory names before the start of the file;
        # RuntimeError: a damaged flag word says the member is encrypted.
        raise ValueError(f"{path}: corrupt or truncated .npz archive ({type(exc).__name__}: {exc})") from None
    except ValueError as exc:
        if str(exc).startswith(path):
            raise
        raise ValueError(f"{path}: unreadable .npz archive ({exc})") from None


def check_split(images, labels, *, expected_count, image_shape, num_classes, what, source):
    """Check one split (train or test) and raise ValueError describing the first thing that is wrong."""
    for name, array in (("images", images), ("labels", labels)):
        if array.dtype != np.uint8:
            raise ValueError(f"{source}: {what} {name} have dtype {array.dtype}, expected uint8")
    if images.ndim != 1 + len(image_shape) or images.shape[1:] != tuple(image_shape):
        raise ValueError(f"{source}: {what} images have shape {images.shape}, "
                         f"expected (N, {', '.join(map(str, image_shape))})")
    if labels.ndim != 1:
        raise ValueError(f"{source}: {what} labels have shape {labels.shape}, expected (N,)")
    if images.shape[0] != labels.shape[0]:
        raise ValueError(f"{source}: {images.shape[0]} {what} images but {labels.shape[0]} {what} labels")
    if images.shape[0] != expected_count:
        raise ValueError(f"{source}: {images.shape[0]} {what} examples, expected {expected_count}")
    if labels.size and int(labels.max()) >= num_classes:
        raise ValueError(f"{source}: {what} labels contain {int(labels.max())}, expected values in "
                         f"[0, {num_classes})")
