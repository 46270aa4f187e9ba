"""Checksum-verified downloads into the cache: stream to a temporary file, verify, then rename into place.

A file that reaches its final name has been verified, so an interrupted or corrupt transfer never becomes a
cached file. Failures are reported as DownloadError with a one-line reason, never as a stack of tracebacks.
"""
import hashlib
import http.client
import os
import socket
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

CONNECT_TIMEOUT = 3.0   # seconds to resolve a host, and again to connect (TCP + TLS); short, so offline fails fast
READ_TIMEOUT = 30.0     # seconds without any data before a started transfer is abandoned
_CHUNK = 1 << 16
_USER_AGENT = "cnnlite-datasets/1.0 (+python urllib)"


class DownloadError(OSError):
    """One URL could not be fetched or failed verification; the message says why in one line.

    `unreachable` is True when no HTTP response came back at all (refused, timed out, unknown host), so other
    files on the same host need not be tried.
    """

    def __init__(self, message, unreachable=False):
        super().__init__(message)
        self.unreachable = unreachable


class ChecksumError(DownloadError):
    """The bytes received do not have the expected checksum."""


def _new_hash(algorithm):
    # MD5 only identifies files here; usedforsecurity=False keeps it available on FIPS-restricted systems.
    return hashlib.new(algorithm, usedforsecurity=False)


def file_digest(path, algorithm):
    digest = _new_hash(algorithm)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify(path, algorithm, expected):
    """True when the file at `path` has the expected hex digest."""
    return file_digest(path, algorithm) == expected.lower()


class _HTTPConnection(http.client.HTTPConnection):
    def connect(self):
        super().connect()          # bounded by the opener's timeout, i.e. CONNECT_TIMEOUT
        self.sock.settimeout(READ_TIMEOUT)


class _HTTPSConnection(http.client.HTTPSConnection):
    def connect(self):
        super().connect()
        self.sock.settimeout(READ_TIMEOUT)


class _HTTPHandler(urllib.request.HTTPHandler):
    def http_open(self, req):
        return self.do_open(_HTTPConnection, req)


class _HTTPSHandler(urllib.request.HTTPSHandler):
    def https_open(self, req):
        return self.do_open(_HTTPSConnection, req, context=self._context)


def _opener():
    return urllib.request.build_opener(_HTTPHandler, _HTTPSHandler)


def _reason(exc):
    """A short human reason for a failed request."""
    if isinstance(exc, urllib.error.HTTPError):
        return f"HTTP {exc.code} {exc.reason}"
    if isinstance(exc, urllib.error.URLError):
        exc = exc.reason if isinstance(exc.reason, BaseException) else exc
        if isinstance(exc, str):
            return exc
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return "timed out"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, socket.gaierror):
        return f"host name lookup failed ({exc.strerror or exc})"
    text = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return text


class _Progress:
    """A one-line progress bar on stderr, drawn only when stderr is a terminal."""

    def __init__(self, label, total, stream=None):
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = bool(getattr(self.stream, "isatty", lambda: False)())
        self.label, self.total, self.done, self.last = label, total, 0, 0.0

    def update(self, n):
        self.done += n
        now = time.monotonic()
        if self.enabled and (now - self.last > 0.1 or (self.total and self.done >= self.total)):
            self.last = now
            mib = self.done / 2**20
            if self.total:
                frac = min(self.done / self.total, 1.0)
                bar = "=" * int(30 * frac)
                self.stream.write(f"\r{self.label} [{bar:<30}] {100 * frac:5.1f}% of {self.total / 2**20:.1f} MiB")
            else:
                self.stream.write(f"\r{self.label} {mib:.1f} MiB")
            self.stream.flush()

    def close(self):
        if self.enabled:
            self.stream.write("\n")
            self.stream.flush()


def download(url, dest, algorithm, expected, *, quiet=False, connect_timeout=CONNECT_TIMEOUT):
    """Fetch `url` into `dest` (a path) if and only if its `algorithm` hex digest equals `expected`.

    Streams into a temporary file beside `dest`, checks the length announced by the server and the checksum,
    then renames it to `dest`. On any failure the temporary file is removed and DownloadError is raised; nothing
    is created on disk before the server has answered. With expected=None only the length is checked.
    """
    dest = os.fspath(dest)
    with _open(url, connect_timeout) as response:
        fd, tmp = _temp_file_beside(dest)
        committed = False
        try:
            with os.fdopen(fd, "wb") as out:
                digest = _new_hash(algorithm)
                received, announced = _copy(response, out, digest, url, quiet)
            if announced is not None and received != announced:
                raise DownloadError(f"transfer interrupted: received {received} of {announced} bytes")
            actual = digest.hexdigest()
            if expected is not None and actual != expected.lower():
                raise ChecksumError(f"{algorithm.upper()} mismatch: expected {expected.lower()}, got {actual} "
                                    f"({received} bytes); the file was discarded")
            os.replace(tmp, dest)
            committed = True
        finally:
            if not committed:
                try:
                    os.unlink(tmp)
                except FileNotFoundError:
                    pass
    return dest


def _temp_file_beside(dest):
    folder = os.path.dirname(dest) or "."
    try:
        os.makedirs(folder, exist_ok=True)
        return tempfile.mkstemp(dir=folder, prefix="." + os.path.basename(dest) + ".", suffix=".part")
    except OSError as exc:
        raise DownloadError(f"cannot write into {folder} ({_reason(exc)}); set CNNLITE_HOME to a writable "
                            f"folder") from None


def _check_resolvable(url, timeout):
    """Raise DownloadError(unreachable) when the URL's host cannot be resolved within `timeout` seconds.

    getaddrinfo has no timeout of its own; a dead DNS server would otherwise stall each mirror for many seconds.
    """
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname
    if parts.scheme not in ("http", "https") or not host:
        return
    if urllib.request.getproxies().get(parts.scheme) and not urllib.request.proxy_bypass(host):
        return              # the proxy resolves names, not us
    outcome = {}

    def resolve():
        try:
            socket.getaddrinfo(host, parts.port or (443 if parts.scheme == "https" else 80),
                               type=socket.SOCK_STREAM)
        except OSError as exc:
            outcome["error"] = exc

    worker = threading.Thread(target=resolve, name="cnnlite-resolve", daemon=True)
    worker.start()
    worker.join(timeout)
    if worker.is_alive():
        raise DownloadError(f"host name lookup of {host} timed out after {timeout:.1f} s", unreachable=True)
    if "error" in outcome:
        raise DownloadError(_reason(outcome["error"]), unreachable=True)


def _open(url, connect_timeout):
    """The HTTP response for `url`, or DownloadError; `unreachable` is set when no server answered."""
    request = urllib.request.Request(url, headers={"User-Agent": _USER_AGENT})
    _check_resolvable(url, connect_timeout)
    try:
        return _opener().open(request, timeout=connect_timeout)
    except urllib.error.HTTPError as exc:
        exc.close()
        raise DownloadError(_reason(exc)) from None
    except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as exc:
        raise DownloadError(_reason(exc), unreachable=True) from None


def _copy(response, out, digest, url, quiet):
    """Copy the body of `response` into `out`, updating `digest`; return (bytes received, Content-Length or None)."""
    length = response.headers.get("Content-Length")
    announced = int(length) if length and length.isdigit() else None
    if not quiet:
        print(f"Downloading {url}", file=sys.stderr, flush=True)
    progress = _Progress(os.path.basename(urllib.parse.urlsplit(url).path), announced)
    received = 0
    try:
        while True:
            block = response.read1(_CHUNK)   # what has arrived, so progress and partial counts are exact
            if not block:
                break
            out.write(block)
            digest.update(block)
            received += len(block)
            progress.update(len(block))
    except http.client.IncompleteRead as exc:
        raise DownloadError(f"transfer interrupted after {received + len(exc.partial)} bytes") from None
    except (http.client.HTTPException, OSError) as exc:
        raise DownloadError(f"transfer failed after {received} bytes: {_reason(exc)}") from None
    finally:
        progress.close()
    return received, announced
