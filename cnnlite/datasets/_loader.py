"""Find, fetch and read an MNIST-like dataset: path= > $CNNLITE_DATA_DIR/<folder> > cache > Keras's cache >
public mirrors."""
import os
import time
import warnings
from dataclasses import dataclass

from cnnlite.datasets import _download
from cnnlite.datasets._idx import check_split, read_idx, read_npz

IDX_ROLES = (  # (role, file stem, item shape)
    ("x_train", "train-images-idx3-ubyte", (28, 28)),
    ("y_train", "train-labels-idx1-ubyte", ()),
    ("x_test", "t10k-images-idx3-ubyte", (28, 28)),
    ("y_test", "t10k-labels-idx1-ubyte", ()),
)


# Total seconds one load_data call may spend on connection attempts that fail (host unknown, refused, timed out),
# so that an offline machine gets its error within a few seconds however many mirrors there are.
OFFLINE_BUDGET = 8.0


class DatasetUnavailableError(OSError):
    """The dataset is neither available locally nor downloadable; the message says where cnnlite looked."""


@dataclass
class Dataset:
    title: str              # "MNIST"
    folder: str             # sub-folder of $CNNLITE_DATA_DIR and of the cache: "mnist"
    npz_name: str           # Keras-style archive name: "mnist.npz"
    checksums: dict         # published file name -> (hash algorithm, hex digest)
    mirrors: list           # URLs: one ending in .npz is that archive; any other is a folder of IDX .gz files
    mirrors_env: str        # environment variable overriding `mirrors` (URLs separated by spaces or commas)
    train_count: int = 60000
    test_count: int = 10000
    num_classes: int = 10

    def current_mirrors(self):
        override = os.environ.get(self.mirrors_env, "").replace(",", " ").split()
        return override or list(self.mirrors)


def cache_dir():
    """The download cache: $CNNLITE_HOME/datasets, by default ~/.cnnlite/datasets."""
    home = os.environ.get("CNNLITE_HOME") or os.path.join(os.path.expanduser("~"), ".cnnlite")
    return os.path.join(os.path.expanduser(home), "datasets")


def keras_cache_dir():
    """Keras's download cache, which cnnlite reads but never writes: $KERAS_HOME/datasets, by default
    ~/.keras/datasets (Keras keeps mnist.npz there and Fashion-MNIST's .gz files under fashion-mnist/)."""
    home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    return os.path.join(os.path.expanduser(home), "datasets")


def _idx_candidates(folder, stem):
    dotted = stem.replace("-idx", ".idx")   # "train-images.idx3-ubyte", as unpacked by some tools
    for name in (stem, stem + ".gz", dotted, dotted + ".gz"):
        yield os.path.join(folder, name)


def _find_idx(folder):
    """Map role -> IDX file path for each role found in `folder`; missing roles are absent."""
    found = {}
    for role, stem, _ in IDX_ROLES:
        for candidate in _idx_candidates(folder, stem):
            if os.path.isfile(candidate):
                found[role] = candidate
                break
    return found


def _read_idx_set(dataset, paths):
    arrays = {role: read_idx(paths[role], item_shape) for role, _, item_shape in IDX_ROLES}
    train_source = f"{paths['x_train']} and {paths['y_train']}"
    test_source = f"{paths['x_test']} and {paths['y_test']}"
    return _checked(dataset, arrays["x_train"], arrays["y_train"], arrays["x_test"], arrays["y_test"],
                    train_source, test_source)


def _read_npz(dataset, path):
    x_train, y_train, x_test, y_test = read_npz(path)
    return _checked(dataset, x_train, y_train, x_test, y_test, path, path)


def _checked(dataset, x_train, y_train, x_test, y_test, train_source, test_source):
    common = dict(image_shape=(28, 28), num_classes=dataset.num_classes)
    check_split(x_train, y_train, expected_count=dataset.train_count, what="training", source=train_source, **common)
    check_split(x_test, y_test, expected_count=dataset.test_count, what="test", source=test_source, **common)
    return (x_train, y_train), (x_test, y_test)


def _describe_partial(folder, found):
    have = ", ".join(os.path.basename(found[role]) for role, _, _ in IDX_ROLES if role in found)
    missing = ", ".join(stem for role, stem, _ in IDX_ROLES if role not in found)
    return f"{folder}: has {have} but no {missing}"


def _load_folder(dataset, folder):
    """Read the dataset from a local folder, or return None and a reason when it is not there."""
    if not os.path.isdir(folder):
        return None, f"{folder}: no such folder"
    found = _find_idx(folder)
    if len(found) == len(IDX_ROLES):
        return _read_idx_set(dataset, found), None
    npz = os.path.join(folder, dataset.npz_name)
    if os.path.isfile(npz):
        return _read_npz(dataset, npz), None
    if found:
        return None, _describe_partial(folder, found) + f" (and no {dataset.npz_name})"
    return None, f"{folder}: no IDX files ({IDX_ROLES[0][1]}[.gz], ...) and no {dataset.npz_name}"


def _load_path(dataset, path):
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a folder or .npz file name (str or os.PathLike), got {path!r}")
    path = os.path.expanduser(os.fspath(path))
    if os.path.isfile(path):
        with open(path, "rb") as probe:
            if probe.read(2) != b"PK":
                raise ValueError(f"{path}: not an .npz archive; path= takes a folder holding the four "
                                 f"{dataset.title} IDX files or a Keras-style {dataset.npz_name}")
        return _read_npz(dataset, path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"path={path!r} does not exist; give a folder holding the four {dataset.title} "
                                f"IDX files (.gz or not) or a Keras-style {dataset.npz_name}")
    data, reason = _load_folder(dataset, path)
    if data is None:
        nested = os.path.join(path, dataset.folder)
        if os.path.isdir(nested):
            data, nested_reason = _load_folder(dataset, nested)
            reason = f"{reason}; {nested_reason}"
    if data is None:
        raise FileNotFoundError(f"{dataset.title} not found at path={path!r}: {reason}")
    return data


def _cached_verified(dataset, path, keras=False):
    """True when `path` exists and matches its published checksum; a mismatch is reported and ignored (a file
    in Keras's cache is left as it is: cnnlite never writes there)."""
    if not os.path.isfile(path):
        return False
    algorithm, digest = dataset.checksums[os.path.basename(path)]
    if _download.verify(path, algorithm, digest):
        return True
    if keras:
        warnings.warn(f"ignoring {path} in Keras's cache: its {algorithm.upper()} does not match the published "
                      f"checksum (cnnlite leaves the file alone and looks elsewhere)", RuntimeWarning, stacklevel=5)
    else:
        warnings.warn(f"ignoring cached file {path}: its {algorithm.upper()} does not match the published "
                      f"checksum; it will be replaced by a fresh download", RuntimeWarning, stacklevel=5)
    return False


def _idx_cache_paths(dataset, cache):
    return {role: os.path.join(cache, dataset.folder, stem + ".gz") for role, stem, _ in IDX_ROLES}


def _load_cache(dataset, cache, keras=False):
    """Read verified cached files; else return None and the set of IDX roles already cached and verified.
    The layout is the same in cnnlite's cache and Keras's (`keras`): <npz_name>, or <folder>/<IDX stem>.gz."""
    npz = os.path.join(cache, dataset.npz_name)
    if dataset.npz_name in dataset.checksums and _cached_verified(dataset, npz, keras):
        return _read_npz(dataset, npz), None
    paths = _idx_cache_paths(dataset, cache)
    have = {role for role, p in paths.items() if _cached_verified(dataset, p, keras)}
    if len(have) == len(paths):
        return _read_idx_set(dataset, paths), None
    return None, have


class _Attempts:
    """Failed URLs with their reasons, and the time spent on connections that never got an answer."""

    def __init__(self, budget):
        self.lines = []
        self.budget = budget

    def connect_timeout(self):
        return min(_download.CONNECT_TIMEOUT, self.budget)


def _download_all(dataset, cache, mirrors, have, attempts):
    """Try the mirrors in order; return the data, or None after recording every failure in `attempts`."""
    idx_paths = _idx_cache_paths(dataset, cache)
    for mirror in mirrors:
        if mirror.endswith(".npz"):
            target = os.path.join(cache, dataset.npz_name)
            if dataset.npz_name not in dataset.checksums:
                attempts.lines.append(f"{mirror}: skipped, no published checksum for {dataset.npz_name}")
                continue
            if _fetch(dataset, mirror, target, attempts):
                return _read_npz(dataset, target)
            continue
        base = mirror if mirror.endswith("/") else mirror + "/"
        for role, path in idx_paths.items():
            if role in have:
                continue
            try:
                if _fetch(dataset, base + os.path.basename(path), path, attempts, raise_unreachable=True):
                    have.add(role)
            except _download.DownloadError:
                break      # host unreachable: do not wait for it once per file
        if len(have) == len(idx_paths):
            return _read_idx_set(dataset, idx_paths)
    return None


def _fetch(dataset, url, target, attempts, raise_unreachable=False):
    if attempts.budget <= 0.05:
        attempts.lines.append(f"{url}: not tried, the network looks unreachable (earlier connections failed "
                              f"for {OFFLINE_BUDGET:.0f} s)")
        return False
    algorithm, digest = dataset.checksums[os.path.basename(target)]
    start = time.monotonic()
    try:
        _download.download(url, target, algorithm, digest, connect_timeout=attempts.connect_timeout())
        return True
    except _download.DownloadError as exc:
        attempts.lines.append(f"{url}: {exc}")
        if exc.unreachable:
            attempts.budget -= time.monotonic() - start
            if raise_unreachable:
                raise
        return False


def load(dataset, path=None):
    """(x_train, y_train), (x_test, y_test) for `dataset`, searched in the documented order."""
    if path is not None:
        return _load_path(dataset, path)
    looked = []
    data_dir = os.environ.get("CNNLITE_DATA_DIR")
    if data_dir:
        data, reason = _load_folder(dataset, os.path.join(os.path.expanduser(data_dir), dataset.folder))
        if data is not None:
            return data
        looked.append(f"{reason} (from CNNLITE_DATA_DIR)")
    else:
        looked.append("$CNNLITE_DATA_DIR/" + dataset.folder + " (CNNLITE_DATA_DIR is not set)")
    cache = cache_dir()
    data, have = _load_cache(dataset, cache)
    if data is not None:
        return data
    looked.append(f"the cache {cache}: no verified {dataset.npz_name} or {dataset.folder}/*.gz")
    keras_cache = keras_cache_dir()
    data, _ = _load_cache(dataset, keras_cache, keras=True)
    if data is not None:
        return data
    looked.append(f"Keras's cache {keras_cache}: no verified {dataset.npz_name} or {dataset.folder}/*.gz")
    attempts = _Attempts(OFFLINE_BUDGET)
    data = _download_all(dataset, cache, dataset.current_mirrors(), have, attempts)
    if data is not None:
        return data
    raise DatasetUnavailableError(_unavailable_message(dataset, looked, attempts.lines)) from None


def _unavailable_message(dataset, looked, attempts):
    tried = "\n".join(f"  - {line}" for line in attempts) or "  (no mirrors configured)"
    where = "\n".join(f"  - {line}" for line in looked)
    files = ", ".join(stem + "[.gz]" for _, stem, _ in IDX_ROLES)
    return (f"{dataset.title} is not available locally and could not be downloaded.\n"
            f"Looked in:\n{where}\n"
            f"Tried to download:\n{tried}\n"
            f"To use local files, either pass the folder holding {files} or a Keras-style "
            f"{dataset.npz_name}:\n"
            f"    load_data(path='/path/to/{dataset.folder}')\n"
            f"or set CNNLITE_DATA_DIR to a folder that contains {dataset.folder}/ "
            f"(e.g. CNNLITE_DATA_DIR=/usr/share/datasets).\n"
            f"Mirrors can be replaced with {dataset.mirrors_env}='URL ...'.")
