"""Downloads against a real HTTP server on 127.0.0.1: mirrors, checksums, interruptions, the offline error."""
import hashlib
import http.server
import io
import os
import pathlib
import socket
import threading
import time
import traceback

import numpy as np
import pytest

import needs

from cnnlite.datasets import DatasetUnavailableError, _download, fashion_mnist, mnist
from cnnlite.utils import get_file
from mnist_files import CANONICAL_SHA256, IDX_NAMES, SHARED_MNIST


def _idx_sha256(array):
    header = bytes([0, 0, 8, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    return hashlib.sha256(header + array.tobytes()).hexdigest()


def _assert_canonical(data):
    (x_train, y_train), (x_test, y_test) = data
    arrays = dict(x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    for role, array in arrays.items():
        assert array.dtype == np.uint8
        assert _idx_sha256(array) == CANONICAL_SHA256[role], role


class _Server:
    """A threaded HTTP server on 127.0.0.1 serving `routes`: URL path -> (behaviour, bytes)."""

    def __init__(self):
        self.routes = {}
        self.requests = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                server.requests.append(self.path)
                behaviour, body = server.routes.get(self.path, ("missing", b""))
                if behaviour == "missing":
                    self.send_error(404, "Not Found")
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if behaviour in ("truncate", "stall"):   # promise the whole body, send half, then...
                    self.wfile.write(body[: len(body) // 2])
                    self.wfile.flush()
                    if behaviour == "stall":               # ...go silent, far longer than any read timeout
                        time.sleep(10)
                    self.close_connection = True           # ...hang up
                    return
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs=dict(poll_interval=0.02),
                                       daemon=True)
        self.thread.start()
        self.running = True

    def stop(self):
        if self.running:
            self.running = False
            self.httpd.shutdown()
            self.httpd.server_close()


@pytest.fixture(autouse=True)
def no_proxy(monkeypatch):
    """Requests to 127.0.0.1 must not be sent through a proxy configured in the environment."""
    for name in ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def server():
    s = _Server()
    yield s
    s.stop()


@pytest.fixture
def closed_port_url():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@pytest.fixture
def isolated(tmp_path, monkeypatch):
    """No local data, an empty cache under tmp_path, and no real mirrors."""
    monkeypatch.delenv("CNNLITE_DATA_DIR", raising=False)
    monkeypatch.delenv("CNNLITE_MNIST_MIRRORS", raising=False)
    monkeypatch.delenv("CNNLITE_FASHION_MNIST_MIRRORS", raising=False)
    monkeypatch.setenv("CNNLITE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras-home"))
    monkeypatch.setattr(mnist, "MIRRORS", [])
    monkeypatch.setattr(fashion_mnist, "MIRRORS", [])
    return tmp_path / "home" / "datasets"


def _files_under(folder):
    return sorted(str(p.relative_to(folder)) for p in pathlib.Path(folder).rglob("*") if p.is_file())


# ---------------------------------------------------------------- download() itself

def test_download_good_file(server, tmp_path):
    body = os.urandom(100_000)
    server.routes["/f.bin"] = ("ok", body)
    dest = tmp_path / "cache" / "f.bin"
    _download.download(server.url + "/f.bin", dest, "sha256", hashlib.sha256(body).hexdigest(), quiet=True)
    assert dest.read_bytes() == body
    assert _files_under(tmp_path / "cache") == ["f.bin"]


def test_download_md5_verified(server, tmp_path):
    body = b"x" * 1000
    server.routes["/f.bin"] = ("ok", body)
    dest = tmp_path / "f.bin"
    _download.download(server.url + "/f.bin", dest, "md5", hashlib.md5(body).hexdigest().upper(), quiet=True)
    assert dest.read_bytes() == body


def test_download_wrong_checksum_is_an_error_and_leaves_nothing(server, tmp_path):
    server.routes["/f.bin"] = ("ok", b"tampered bytes")
    with pytest.raises(_download.ChecksumError, match="SHA256 mismatch: expected 0{64}, got"):
        _download.download(server.url + "/f.bin", tmp_path / "f.bin", "sha256", "0" * 64, quiet=True)
    assert _files_under(tmp_path) == []


def test_download_wrong_checksum_does_not_replace_existing_file(server, tmp_path):
    dest = tmp_path / "f.bin"
    dest.write_bytes(b"old")
    server.routes["/f.bin"] = ("ok", b"new")
    with pytest.raises(_download.ChecksumError):
        _download.download(server.url + "/f.bin", dest, "sha256", "0" * 64, quiet=True)
    assert dest.read_bytes() == b"old"
    assert _files_under(tmp_path) == ["f.bin"]


def test_download_404(server, tmp_path):
    with pytest.raises(_download.DownloadError, match="HTTP 404") as info:
        _download.download(server.url + "/nothing", tmp_path / "f", "sha256", "0" * 64, quiet=True)
    assert not info.value.unreachable
    assert _files_under(tmp_path) == []


def test_download_connection_refused_is_fast(closed_port_url, tmp_path):
    start = time.monotonic()
    with pytest.raises(_download.DownloadError, match="refused") as info:
        _download.download(closed_port_url + "/f", tmp_path / "f", "sha256", "0" * 64, quiet=True)
    assert time.monotonic() - start < 5
    assert info.value.unreachable
    assert info.value.__cause__ is None and info.value.__suppress_context__
    assert _files_under(tmp_path) == []


def test_download_interrupted_transfer_leaves_no_partial_file(server, tmp_path):
    body = os.urandom(300_000)
    server.routes["/f.bin"] = ("truncate", body)
    with pytest.raises(_download.DownloadError, match=r"interrupted.*150000 of 300000|interrupted after 150000"):
        _download.download(server.url + "/f.bin", tmp_path / "f.bin", "sha256",
                           hashlib.sha256(body).hexdigest(), quiet=True)
    assert _files_under(tmp_path) == []


def test_download_stalled_transfer_times_out(server, tmp_path, monkeypatch):
    monkeypatch.setattr(_download, "READ_TIMEOUT", 0.3)
    server.routes["/f.bin"] = ("stall", os.urandom(100_000))
    start = time.monotonic()
    with pytest.raises(_download.DownloadError, match="transfer failed after 50000 bytes: timed out"):
        _download.download(server.url + "/f.bin", tmp_path / "f.bin", "sha256", "0" * 64, quiet=True)
    # "timed out" says the client gave up, not that the server hung up (at 10 s); the bound leaves room for a loaded
    # machine while staying below the hang-up
    assert time.monotonic() - start < 8
    assert _files_under(tmp_path) == []


def test_download_unwritable_cache_is_a_clear_error(server, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_bytes(b"")
    server.routes["/f.bin"] = ("ok", b"abc")
    with pytest.raises(_download.DownloadError, match="cannot write into"):
        _download.download(server.url + "/f.bin", blocker / "sub" / "f.bin", "sha256", "0" * 64, quiet=True)


def test_download_prints_source_and_draws_bar_only_on_a_terminal(server, tmp_path, capsys):
    body = os.urandom(200_000)
    server.routes["/f.bin"] = ("ok", body)
    _download.download(server.url + "/f.bin", tmp_path / "f.bin", "sha256", hashlib.sha256(body).hexdigest())
    err = capsys.readouterr().err
    assert f"Downloading {server.url}/f.bin" in err and "%" not in err

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    term = Terminal()
    bar = _download._Progress("f.bin", 1000, stream=term)
    bar.update(500)
    bar.update(500)
    bar.close()
    assert "100.0%" in term.getvalue() and "[" in term.getvalue()


# ---------------------------------------------------------------- load_data() through mirrors

@pytest.fixture(scope="module")
def mnist_npz_bytes(tmp_path_factory):
    if SHARED_MNIST is None:
        needs.missing("shared MNIST IDX files not found")
    (x_train, y_train), (x_test, y_test) = mnist.load_data(path=SHARED_MNIST)
    path = tmp_path_factory.mktemp("npz") / "mnist.npz"
    np.savez(path, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    return path.read_bytes()


@pytest.fixture(scope="module")
def mnist_gz():
    if SHARED_MNIST is None:
        needs.missing("shared MNIST IDX files not found")
    return {name: (SHARED_MNIST / name).read_bytes() for name in IDX_NAMES}


def _patch_idx_checksums(monkeypatch, files):
    for name, body in files.items():
        monkeypatch.setitem(mnist.CHECKSUMS, name, ("md5", hashlib.md5(body).hexdigest()))


def test_load_data_downloads_npz_then_uses_cache(server, isolated, monkeypatch, mnist_npz_bytes):
    server.routes["/keras/mnist.npz"] = ("ok", mnist_npz_bytes)
    monkeypatch.setitem(mnist.CHECKSUMS, "mnist.npz", ("sha256", hashlib.sha256(mnist_npz_bytes).hexdigest()))
    monkeypatch.setenv("CNNLITE_MNIST_MIRRORS", server.url + "/keras/mnist.npz")
    _assert_canonical(mnist.load_data())
    assert _files_under(isolated) == ["mnist.npz"]
    server.stop()                       # the second call must not need the network
    _assert_canonical(mnist.load_data())


def test_load_data_idx_mirrors_fall_through_404_and_refused(server, isolated, monkeypatch, mnist_gz,
                                                            closed_port_url):
    for name, body in mnist_gz.items():
        server.routes["/good/" + name] = ("ok", body)
    _patch_idx_checksums(monkeypatch, mnist_gz)
    monkeypatch.setattr(mnist, "MIRRORS", [
        server.url + "/gone/mnist.npz",         # 404
        closed_port_url + "/mnist/",            # connection refused: tried once, not once per file
        server.url + "/empty/",                 # 404 for every file
        server.url + "/good/",
    ])
    _assert_canonical(mnist.load_data())
    assert _files_under(isolated) == sorted(f"mnist/{name}" for name in IDX_NAMES)
    assert server.requests[0] == "/gone/mnist.npz"
    assert server.requests[1:5] == ["/empty/" + name for name in IDX_NAMES]
    assert server.requests[5:] == ["/good/" + name for name in IDX_NAMES]


def test_load_data_takes_each_file_from_the_first_mirror_that_has_it(server, isolated, monkeypatch, mnist_gz):
    for i, (name, body) in enumerate(mnist_gz.items()):
        server.routes[("/a/" if i % 2 else "/b/") + name] = ("ok", body)
    _patch_idx_checksums(monkeypatch, mnist_gz)
    monkeypatch.setattr(mnist, "MIRRORS", [server.url + "/a/", server.url + "/b"])
    _assert_canonical(mnist.load_data())


def test_load_data_wrong_checksum_fails_and_caches_nothing(server, isolated, monkeypatch, mnist_npz_bytes):
    server.routes["/mnist.npz"] = ("ok", mnist_npz_bytes)   # the real checksum in mnist.CHECKSUMS will not match
    monkeypatch.setattr(mnist, "MIRRORS", [server.url + "/mnist.npz"])
    with pytest.raises(DatasetUnavailableError, match="SHA256 mismatch"):
        mnist.load_data()
    assert _files_under(isolated.parent) == []


def test_load_data_interrupted_download_leaves_no_partial_file(server, isolated, monkeypatch, mnist_gz):
    for name, body in mnist_gz.items():
        server.routes["/m/" + name] = ("truncate" if "train-images" in name else "ok", body)
    _patch_idx_checksums(monkeypatch, mnist_gz)
    monkeypatch.setattr(mnist, "MIRRORS", [server.url + "/m/"])
    with pytest.raises(DatasetUnavailableError, match="train-images-idx3-ubyte.gz: transfer interrupted"):
        mnist.load_data()
    # the three complete files are cached (verified); the interrupted one left nothing behind
    assert _files_under(isolated) == sorted(f"mnist/{name}" for name in IDX_NAMES if "train-images" not in name)
    server.routes["/m/train-images-idx3-ubyte.gz"] = ("ok", mnist_gz["train-images-idx3-ubyte.gz"])
    server.requests.clear()
    _assert_canonical(mnist.load_data())
    assert server.requests == ["/m/train-images-idx3-ubyte.gz"]   # only the missing file is fetched


def test_corrupt_cached_file_is_replaced(server, isolated, monkeypatch, mnist_gz):
    for name, body in mnist_gz.items():
        server.routes["/m/" + name] = ("ok", body)
    _patch_idx_checksums(monkeypatch, mnist_gz)
    monkeypatch.setattr(mnist, "MIRRORS", [server.url + "/m/"])
    mnist.load_data()
    cached = isolated / "mnist" / "t10k-labels-idx1-ubyte.gz"
    cached.write_bytes(b"garbage")
    server.requests.clear()
    with pytest.warns(RuntimeWarning, match="ignoring cached file"):
        _assert_canonical(mnist.load_data())
    assert server.requests == ["/m/t10k-labels-idx1-ubyte.gz"]
    assert cached.read_bytes() == mnist_gz["t10k-labels-idx1-ubyte.gz"]


def test_offline_error_is_fast_and_says_where_it_looked(isolated, monkeypatch, closed_port_url, tmp_path):
    monkeypatch.setenv("CNNLITE_DATA_DIR", str(tmp_path / "nowhere"))
    mirrors = [closed_port_url + "/mnist.npz", closed_port_url + "/idx/"]
    monkeypatch.setattr(mnist, "MIRRORS", mirrors)
    start = time.monotonic()
    with pytest.raises(DatasetUnavailableError) as info:
        mnist.load_data()
    assert time.monotonic() - start < 10
    message = str(info.value)
    assert isinstance(info.value, OSError)
    assert str(tmp_path / "nowhere" / "mnist") in message          # the data folder it looked in
    assert str(isolated) in message                                # the cache
    assert closed_port_url + "/mnist.npz: connection refused" in message
    assert closed_port_url + "/idx/train-images-idx3-ubyte.gz: connection refused" in message
    assert "/idx/train-labels" not in message                      # an unreachable host is not retried per file
    assert "path=" in message and "CNNLITE_DATA_DIR" in message
    assert info.value.__cause__ is None and info.value.__suppress_context__
    text = "".join(traceback.format_exception(info.type, info.value, info.tb))
    assert "During handling" not in text and "direct cause" not in text
    assert not isolated.parent.exists()          # not even an empty cache folder is left behind


@pytest.fixture
def slow_dns(monkeypatch):
    """Names under .test resolve never (a dead DNS server) or fail at once (.fail), others as usual."""
    real = socket.getaddrinfo

    def fake(host, *args, **kwargs):
        if str(host).endswith(".test"):
            time.sleep(5)
        if str(host).endswith(".fail"):
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", fake)


def test_dns_failure_and_dns_timeout_are_reported(slow_dns, tmp_path):
    with pytest.raises(_download.DownloadError, match="host name lookup failed") as info:
        _download.download("http://mirror.fail/f", tmp_path / "f", "sha256", "0" * 64, quiet=True)
    assert info.value.unreachable
    start = time.monotonic()
    with pytest.raises(_download.DownloadError, match="lookup of mirror.test timed out after 0.2 s") as info:
        _download.download("http://mirror.test/f", tmp_path / "f", "sha256", "0" * 64, quiet=True,
                           connect_timeout=0.2)
    assert time.monotonic() - start < 2 and info.value.unreachable
    assert _files_under(tmp_path) == []


def test_offline_budget_bounds_the_time_spent_on_dead_mirrors(isolated, monkeypatch, slow_dns):
    from cnnlite.datasets import _loader
    monkeypatch.setattr(_download, "CONNECT_TIMEOUT", 0.3)
    monkeypatch.setattr(_loader, "OFFLINE_BUDGET", 0.7)
    monkeypatch.setattr(mnist, "MIRRORS", ["http://a.test/mnist.npz", "http://b.test/", "http://c.test/",
                                                   "http://d.test/", "http://e.test/"])
    start = time.monotonic()
    with pytest.raises(DatasetUnavailableError) as info:
        mnist.load_data()
    assert time.monotonic() - start < 2.5
    message = str(info.value)
    assert "http://a.test/mnist.npz: host name lookup of a.test timed out" in message
    assert "http://b.test/train-images-idx3-ubyte.gz: host name lookup of b.test timed out" in message
    assert "http://e.test/train-images-idx3-ubyte.gz: not tried, the network looks unreachable" in message


def test_offline_error_without_data_dir(isolated, monkeypatch, closed_port_url):
    monkeypatch.setattr(fashion_mnist, "MIRRORS", [closed_port_url + "/"])
    with pytest.raises(DatasetUnavailableError, match="Fashion-MNIST is not available") as info:
        fashion_mnist.load_data()
    assert "CNNLITE_DATA_DIR is not set" in str(info.value)
    assert "fashion-mnist" in str(info.value)


def test_data_dir_with_partial_files_is_reported(isolated, monkeypatch, closed_port_url, tmp_path, mnist_gz):
    folder = tmp_path / "data" / "mnist"
    folder.mkdir(parents=True)
    (folder / "train-images-idx3-ubyte.gz").write_bytes(mnist_gz["train-images-idx3-ubyte.gz"])
    monkeypatch.setenv("CNNLITE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setattr(mnist, "MIRRORS", [closed_port_url + "/"])
    with pytest.raises(DatasetUnavailableError, match="has train-images-idx3-ubyte.gz but no train-labels"):
        mnist.load_data()


# ---------------------------------------------------------------- get_file

def test_get_file_downloads_once_and_verifies(server, tmp_path, monkeypatch):
    monkeypatch.setenv("CNNLITE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras-home"))
    body = os.urandom(5000)
    server.routes["/w.bin"] = ("ok", body)
    digest = hashlib.sha256(body).hexdigest()
    path = get_file("w.bin", server.url + "/w.bin", file_hash=digest, cache_subdir="models")
    assert path == str(tmp_path / "home" / "models" / "w.bin")
    assert pathlib.Path(path).read_bytes() == body
    server.requests.clear()
    assert get_file("w.bin", server.url + "/w.bin", file_hash=digest, cache_subdir="models") == path
    assert server.requests == []
    with pytest.raises(OSError, match="could not download .*SHA256 mismatch"):
        get_file("other.bin", server.url + "/w.bin", file_hash="1" * 64, cache_dir=str(tmp_path / "c"))
    assert not (tmp_path / "c" / "datasets" / "other.bin").exists()
    with pytest.raises(ValueError, match="file_hash"):
        get_file("x", server.url + "/w.bin", file_hash="abc")
