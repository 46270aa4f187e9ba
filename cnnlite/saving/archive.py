"""Files on disk, independent of what they hold: path checks, atomic writes and zip archives of JSON and .npy members.

Writes are atomic: `atomic_write` writes to a temporary file next to the target (`.<name>.cnnlite-<pid>-<random>.tmp`),
flushes and fsyncs it, then renames it over the target with `os.replace`; on any exception the temporary file is
removed. A process killed mid-save therefore leaves the previous file intact plus, at worst, its own temporary file;
the next save to the same path deletes temporary files whose writing process is gone.

Archives are zip files with stored (uncompressed) members and fixed timestamps, so the same content gives the same
bytes. `ZipReader` refuses duplicate member names and any member larger than the size its reader declares before
reading it; arrays are read with `allow_pickle=False`, so an object array or a pickle raises ValueError and runs
nothing. This module knows nothing of models: a format module (cnnlite_format.py) decides what the members mean.
"""
import io
import json
import math
import os
import secrets
import zipfile

import numpy as np

from cnnlite._npy import read_npy_header

__all__ = ["check_path", "check_suffix", "atomic_write", "remove_stale_temps", "write_zip", "write_members",
           "npy_member", "ZipReader", "MAX_NPY_HEADER_BYTES", "MAX_DEFLATE_RATIO"]

_ZIP_DATE = (1980, 1, 1, 0, 0, 0)  # fixed timestamps: the same model gives the same bytes
MAX_NPY_HEADER_BYTES = 1 << 16
MAX_DEFLATE_RATIO = 1100  # deflate cannot expand data by more than about 1032:1


# --- paths ---------------------------------------------------------------------------------------------------

def check_path(path, what):
    """`path` as a str; TypeError unless a str or os.PathLike, ValueError if empty. `what` names the caller."""
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"{what}: filepath must be a str or os.PathLike, got {type(path).__name__}")
    path = os.fspath(path)
    if isinstance(path, bytes):
        path = os.fsdecode(path)
    if not path:
        raise ValueError(f"{what}: filepath must not be empty")
    return path


def require_built(model, path):
    """load_weights needs the model's weights to exist: ValueError saying how to build it otherwise."""
    if not getattr(model, "built", False):
        raise ValueError(
            f"load_weights: the model must be built before loading {path!r}; call model.build(input_shape) "
            "or give the first layer an input_shape"
        )


def check_suffix(path, suffix, what):
    """ValueError unless `path` ends in `suffix` (HDF5 names get their own message: there is no HDF5 writer)."""
    lower = path.lower()
    if lower.endswith((".h5", ".hdf5")):
        raise ValueError(
            f"{what}: HDF5 files ({path!r}) are not supported; cnnlite saves only its own zip format. "
            f"Use a filepath ending in {suffix!r}."
        )
    if not path.endswith(suffix):
        raise ValueError(f"{what}: the filepath must end in {suffix!r} (cnnlite zip format). Received: {path!r}")


# --- atomic writes -------------------------------------------------------------------------------------------

def _temp_prefix(path):
    return "." + os.path.basename(path)[:120] + ".cnnlite-"  # short enough for NAME_MAX with the suffix


def _pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def remove_stale_temps(path):
    """Delete temporary files left for `path` by processes that died mid-save (ours are removed on exceptions)."""
    folder = os.path.dirname(path) or "."
    prefix = _temp_prefix(path)
    try:
        names = os.listdir(folder)
    except OSError:
        return
    for name in names:
        if not (name.startswith(prefix) and name.endswith(".tmp")):
            continue
        pid_text = name[len(prefix):].split("-", 1)[0]
        if not pid_text.isdigit():
            continue
        pid = int(pid_text)
        if pid != os.getpid() and not _pid_alive(pid):
            try:
                os.unlink(os.path.join(folder, name))
            except OSError:
                pass


def _fsync_folder(folder):
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems cannot fsync a directory; the rename itself is still atomic
    finally:
        os.close(fd)


def atomic_write(path, write):
    """Call `write(binary_file)` on a temporary file next to `path`, fsync it, then rename it over `path`."""
    if os.path.isdir(path):
        raise IsADirectoryError(f"cannot save to {path!r}: it is an existing directory")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"cannot save to {path!r}: folder {folder!r} does not exist")
    remove_stale_temps(path)
    temp = os.path.join(folder, f"{_temp_prefix(path)}{os.getpid()}-{secrets.token_hex(6)}.tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temp, path)
    except BaseException:
        try:
            os.unlink(temp)
        except OSError:
            pass
        raise
    _fsync_folder(folder)


# --- writing -------------------------------------------------------------------------------------------------

def _member(name):
    info = zipfile.ZipInfo(name, date_time=_ZIP_DATE)
    info.compress_type = zipfile.ZIP_STORED
    info.external_attr = 0o644 << 16
    return info


def npy_member(group, index):
    """The member name of array `index` of `group`: `<group>/<index:05d>.npy`."""
    return f"{group}/{index:05d}.npy"


def write_zip(f, json_name, document, groups):
    """Write to the binary file `f` a zip holding `document` as the JSON member `json_name` (first), then every
    array of `groups` ({group: [arrays]}) as `npy_member(group, i)`, never pickling."""
    with zipfile.ZipFile(f, "w", compression=zipfile.ZIP_STORED) as zf:
        zf.writestr(_member(json_name), json.dumps(document, indent=1, sort_keys=True, allow_nan=False))
        for group, arrays in groups.items():
            for i, array in enumerate(arrays):
                with zf.open(_member(npy_member(group, i)), "w", force_zip64=True) as out:
                    np.lib.format.write_array(out, array, allow_pickle=False)


def write_members(f, members):
    """Write to the binary file `f` a zip of `members` ([(name, bytes or str)], in that order), stored and with
    fixed timestamps like `write_zip` (the layout of a Keras 3 `.keras` archive)."""
    with zipfile.ZipFile(f, "w", compression=zipfile.ZIP_STORED) as zf:
        for name, data in members:
            zf.writestr(_member(name), data)


# --- reading -------------------------------------------------------------------------------------------------

class ZipReader:
    """An open zip archive whose members are read only up to a declared size. Every problem is a ValueError naming
    the file (`error(problem)`); a missing file is FileNotFoundError, a directory IsADirectoryError."""

    def __init__(self, path):
        self.path = path
        if not os.path.exists(path):
            raise FileNotFoundError(f"cannot load {path!r}: no such file")
        if os.path.isdir(path):
            raise IsADirectoryError(f"cannot load {path!r}: it is a directory, expected a cnnlite zip file")
        try:
            self.zip = zipfile.ZipFile(path, "r")
        except zipfile.BadZipFile as e:
            raise self.error(f"not a cnnlite file (not a zip archive, or truncated/corrupt: {e})") from None
        except (OSError, EOFError, ValueError, NotImplementedError) as e:  # e.g. "zip file version 8.0"
            raise self.error(f"cannot read it as a zip archive ({e})") from None
        try:
            self.infos = self._index_members()
        except BaseException:
            self.zip.close()
            raise

    def error(self, problem):
        return ValueError(f"cannot load {self.path!r}: {problem}")

    def close(self):
        self.zip.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __contains__(self, name):
        return name in self.infos

    def _index_members(self):
        infos = {}
        for info in self.zip.infolist():
            if info.filename in infos:
                raise self.error(f"the archive holds {info.filename!r} twice")
            infos[info.filename] = info
        return infos

    def plausible_size(self, name):
        """The most bytes member `name` can really hold: the archive's size when stored, times the largest
        deflate ratio when compressed (so a size field claiming more is refused before anything is read)."""
        info = self.infos.get(name)
        ratio = 1 if info is None or info.compress_type == zipfile.ZIP_STORED else MAX_DEFLATE_RATIO
        return os.path.getsize(self.path) * ratio

    def read_bytes(self, name, limit=None):
        """The bytes of member `name`, refused before reading when the archive declares more than `limit`
        (default: `plausible_size(name)`)."""
        if limit is None:
            limit = self.plausible_size(name)
        info = self.infos.get(name)
        if info is None:
            raise self.error(f"the archive has no {name!r}")
        if info.file_size > limit:
            raise self.error(f"{name!r} is {info.file_size} bytes, more than the {limit} expected")
        archive_size = os.path.getsize(self.path)
        if info.compress_size > archive_size:  # checked before zipfile makes a read buffer of that size
            raise self.error(f"{name!r} claims {info.compress_size} bytes but the archive has only {archive_size}")
        try:
            return self.zip.read(info)
        except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, ValueError, NotImplementedError,
                RuntimeError) as e:  # RuntimeError: a damaged flag word makes zipfile think it is encrypted
            raise self.error(f"{name!r} is corrupt or truncated ({e})") from None

    def verify_members(self, skip=()):
        """Read every member not named in `skip` through its CRC and local header: damage in a member the format
        does not need (or in a member name, which would hide a member the format reads when present) is then an
        error rather than a silently different model."""
        for name in self.infos:
            if name not in skip:
                self.read_bytes(name)

    def read_json(self, name, limit):
        """Member `name` parsed as UTF-8 JSON (at most `limit` bytes)."""
        raw = self.read_bytes(name, limit)
        try:
            return json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise self.error(f"{name!r} is not valid JSON ({e})") from None

    def read_float32(self, name, shape):
        """Member `name` as a .npy float32 array of exactly `shape`, never unpickling anything."""
        expected_bytes = 4 * math.prod(shape)
        raw = self.read_bytes(name, expected_bytes + MAX_NPY_HEADER_BYTES)
        # The .npy header is parsed and checked (dtype, shape, size against the bytes present) before anything is
        # allocated: numpy's read_array would allocate whatever the header claims first.
        stream = io.BytesIO(raw)
        try:
            header_shape, fortran, dtype = read_npy_header(stream)
        except ValueError as e:
            raise self.error(f"{name!r} is not a valid float32 .npy array ({e})") from None
        if dtype.kind != "f" or dtype.itemsize != 4:
            raise self.error(f"{name!r} has dtype {dtype}, expected float32")
        if list(header_shape) != list(shape):
            raise self.error(f"{name!r} has shape {tuple(header_shape)}, the config says {tuple(shape)}")
        data_bytes = len(raw) - stream.tell()
        if data_bytes != expected_bytes:
            raise self.error(f"{name!r}: its header declares shape {tuple(header_shape)} of float32 "
                             f"({expected_bytes} bytes) but the member holds {data_bytes} bytes of data")
        array = np.frombuffer(raw, dtype=dtype, count=math.prod(shape), offset=stream.tell())
        return np.array(array.reshape(shape, order="F" if fortran else "C"), dtype=np.float32, order="C")
