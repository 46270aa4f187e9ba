"""`get_file`: download a file once into the cnnlite cache, verified by checksum, as keras.utils.get_file."""
import os
import warnings

from cnnlite.datasets import _download


def _algorithm(file_hash, hash_algorithm):
    if hash_algorithm not in ("auto", "sha256", "md5"):
        raise ValueError(f"hash_algorithm must be 'auto', 'sha256' or 'md5', got {hash_algorithm!r}")
    if hash_algorithm != "auto":
        return hash_algorithm
    return "sha256" if len(file_hash) == 64 else "md5"


def get_file(fname, origin, file_hash=None, cache_subdir="datasets", hash_algorithm="auto", cache_dir=None,
             md5_hash=None, force_download=False):
    """Return the local path of `fname`, downloading it from `origin` first unless a verified copy is cached.

    The file lives in `cache_dir/cache_subdir/fname` (cache_dir defaults to $CNNLITE_HOME, else ~/.cnnlite); an
    absolute `fname` is used as is. With `file_hash` (SHA-256 or MD5 hex; `md5_hash` is the legacy spelling) a
    cached copy is checked and replaced when it does not match, and a download is kept only when it matches.
    Raises OSError (cnnlite.datasets._download.DownloadError) saying why when the download fails.
    """
    if not fname or not isinstance(fname, (str, os.PathLike)):
        raise ValueError(f"fname must be a non-empty file name, got {fname!r}")
    if not origin or not isinstance(origin, str):
        raise ValueError(f"origin must be a URL string, got {origin!r}")
    file_hash = file_hash or md5_hash
    if file_hash is not None:
        if not isinstance(file_hash, str) or len(file_hash) not in (32, 64):
            raise ValueError(f"file_hash must be a 32-character MD5 or 64-character SHA-256 hex string, "
                             f"got {file_hash!r}")
        algorithm = _algorithm(file_hash, hash_algorithm)
    else:
        algorithm = "sha256"
    fname = os.fspath(fname)
    if os.path.isabs(fname):
        path = fname
    else:
        root = cache_dir or os.environ.get("CNNLITE_HOME") or os.path.join("~", ".cnnlite")
        path = os.path.join(os.path.expanduser(root), cache_subdir, fname)
    if os.path.isfile(path) and not force_download:
        if file_hash is None or _download.verify(path, algorithm, file_hash):
            return path
        warnings.warn(f"{path} does not match its {algorithm.upper()} {file_hash}; downloading it again",
                      RuntimeWarning, stacklevel=2)
    try:
        return _download.download(origin, path, algorithm, file_hash)
    except _download.DownloadError as exc:
        raise _download.DownloadError(f"could not download {origin} to {path}: {exc}") from None
