"""Finding, downloading and caching third-party files: the promises of ``squeezekit._resources``.

No test touches the internet: downloads come from an ``http.server`` on 127.0.0.1 (port 0) started per
test and shut down in the fixture's finalizer. ``SQUEEZEKIT_HOME`` and any fake ``SQUEEZEKIT_DATA_DIR``
live under ``tmp_path``; the real shared data is only ever read (or copied into ``tmp_path``).
"""

from __future__ import annotations

import hashlib
import http.server
import io
import os
import socket
import struct
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import squeezekit._progress
import squeezekit.weights.convert as convert
from squeezekit._resources import DataFile, atomic_write_bytes, cache_dir, resolve
from squeezekit._cache import record_path
from squeezekit.labels import IMAGENET_CLASS_LIST
from squeezekit.errors import WeightFileError
from squeezekit.weights.registry import get_weights_entry

CONTENT = bytes(range(256)) * 300  # 76.8 kB: more than one 64 kB read block


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _git_blob_id(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def _part_files(root: Path) -> list[str]:
    """Every temporary download/write file left under ``root`` (they are dot-files ending in .part)."""
    return [os.path.join(folder, name) for folder, _, names in os.walk(root)
            for name in names if name.endswith(".part")]


class _Server:
    """Serves ``routes[path] = (body, declared Content-Length, reset)`` on 127.0.0.1; counts requests.

    With ``reset`` the connection is aborted (TCP RST) after the body instead of closed normally.
    """

    def __init__(self) -> None:
        self.routes: dict[str, tuple[bytes, int | None, bool]] = {}
        self.hits: dict[str, int] = {}
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"  # one request per connection: closing it ends the body

            def do_GET(self):  # noqa: N802 (http.server's naming)
                server.hits[self.path] = server.hits.get(self.path, 0) + 1
                if self.path not in server.routes:
                    self.send_error(404)
                    return
                body, declared, reset = server.routes[self.path]
                self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(len(body) if declared is None else declared))
                self.end_headers()
                self.wfile.write(body)  # then the connection closes, even if fewer bytes than declared
                if reset:
                    time.sleep(0.2)  # let the client get past the headers, into the body read
                    self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    self.connection.close()
                    self.close_connection = True

            def log_message(self, *args):  # keep pytest's output clean
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.timeout = 5
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def serve(self, path: str, body: bytes, declared_length: int | None = None, reset: bool = False) -> str:
        self.routes[path] = (body, declared_length, reset)
        return f"http://127.0.0.1:{self.httpd.server_address[1]}{path}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


@pytest.fixture
def server():
    """A local HTTP server, shut down after the test."""
    instance = _Server()
    yield instance
    instance.close()


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    """An empty SQUEEZEKIT_HOME under tmp_path, and no SQUEEZEKIT_DATA_DIR."""
    path = tmp_path / "home"
    monkeypatch.setenv("SQUEEZEKIT_HOME", str(path))
    monkeypatch.delenv("SQUEEZEKIT_DATA_DIR", raising=False)
    return path


def test_download_lands_in_cache_sources_with_progress(server, home, monkeypatch):
    """A download goes to SQUEEZEKIT_HOME/sources/<relative_path>, verified, with a progress bar, no .part left."""
    updates = []
    real_bar = squeezekit._progress.progress_bar

    def recording_bar(*args, **kwargs):
        bar = real_bar(*args, **kwargs)
        update = bar.update
        bar.update = lambda n=1: (updates.append(n), update(n))
        return bar

    monkeypatch.setattr(squeezekit._progress, "progress_bar", recording_bar)
    file = DataFile("weights/test/blob.bin", server.serve("/blob.bin", CONTENT), sha256=_sha256(CONTENT))

    path = resolve(file)

    assert cache_dir() == home
    assert path == home / "sources" / "weights" / "test" / "blob.bin"
    assert path.read_bytes() == CONTENT
    assert sum(updates) == len(CONTENT)
    assert _part_files(home) == []
    assert resolve(file) == path and server.hits["/blob.bin"] == 1  # the second call uses the cache


@pytest.mark.parametrize("ending", ["closed", "reset"])
def test_interrupted_download_raises_and_leaves_nothing(server, home, ending):
    """A body cut short (connection closed or reset before Content-Length bytes) is a WeightFileError naming the URL."""
    url = server.serve("/cut.bin", CONTENT[:1000], declared_length=len(CONTENT), reset=ending == "reset")
    file = DataFile("weights/test/cut.bin", url, sha256=_sha256(CONTENT))

    with pytest.raises(WeightFileError) as caught:
        resolve(file)

    assert url in str(caught.value)
    assert not (home / "sources" / "weights" / "test" / "cut.bin").exists()
    assert _part_files(home) == []


def test_unreachable_server_is_a_weight_file_error(home):
    """A refused connection is a WeightFileError naming the URL and pointing at SQUEEZEKIT_DATA_DIR."""
    with socket.socket() as probe:  # a port that nothing listens on once closed
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}/nothing.bin"
    file = DataFile("weights/test/nothing.bin", url, sha256=_sha256(CONTENT))

    with pytest.raises(WeightFileError) as caught:
        resolve(file)

    assert url in str(caught.value) and "SQUEEZEKIT_DATA_DIR" in str(caught.value)
    assert not (home / "sources" / "weights" / "test" / "nothing.bin").exists()
    assert _part_files(home) == []


def test_wrong_download_is_rejected_naming_url_and_hash(server, home):
    """Downloaded bytes that fail the sha256 give a WeightFileError naming the URL and expected hash; nothing kept."""
    expected = _sha256(CONTENT)
    url = server.serve("/wrong.bin", CONTENT[::-1])
    file = DataFile("weights/test/wrong.bin", url, sha256=expected)

    with pytest.raises(WeightFileError) as caught:
        resolve(file)

    message = str(caught.value)
    assert url in message and expected in message
    assert not (home / "sources" / "weights" / "test" / "wrong.bin").exists()
    assert _part_files(home) == []


def test_git_blob_id_verification(server, home):
    """A DataFile known only by its git blob id is verified by it: right bytes accepted, wrong ones rejected."""
    blob = _git_blob_id(CONTENT)
    good = DataFile("weights/test/good.caffemodel", server.serve("/good", CONTENT), sha256=None, git_blob_sha1=blob)
    bad = DataFile("weights/test/bad.caffemodel", server.serve("/bad", CONTENT + b"x"), sha256=None, git_blob_sha1=blob)

    assert resolve(good).read_bytes() == CONTENT
    assert good.digest_of(resolve(good)) == blob
    with pytest.raises(WeightFileError, match=blob):
        resolve(bad)
    assert not (home / "sources" / "weights" / "test" / "bad.caffemodel").exists()
    with pytest.raises(ValueError, match="sha256 or a git_blob_sha1"):
        DataFile("x", "http://127.0.0.1/x", sha256=None)


def test_truncated_file_in_data_dir_is_an_error_and_kept(data_dir, tmp_path, monkeypatch):
    """A truncated file in SQUEEZEKIT_DATA_DIR names the file and expected sha256, and is not deleted."""
    user_data = tmp_path / "data"
    target = user_data / IMAGENET_CLASS_LIST.relative_path
    target.parent.mkdir(parents=True)
    truncated = (data_dir / IMAGENET_CLASS_LIST.relative_path).read_bytes()[:1000]
    target.write_bytes(truncated)
    monkeypatch.setenv("SQUEEZEKIT_DATA_DIR", str(user_data))
    monkeypatch.setenv("SQUEEZEKIT_HOME", str(tmp_path / "home"))

    with pytest.raises(WeightFileError) as caught:
        resolve(IMAGENET_CLASS_LIST)

    message = str(caught.value)
    assert str(target) in message and IMAGENET_CLASS_LIST.sha256 in message
    assert target.read_bytes() == truncated
    assert not (tmp_path / "home").exists()  # no download was tried


def test_corrupted_cache_file_is_redownloaded_others_untouched(server, home):
    """A cached copy failing its hash is replaced by a fresh download; other good cached files are untouched."""
    other_content = b"another good file\n" * 100
    other = DataFile("weights/test/other.bin", server.serve("/other.bin", other_content), sha256=_sha256(other_content))
    bad = DataFile("weights/test/blob.bin", server.serve("/blob.bin", CONTENT), sha256=_sha256(CONTENT))
    other_path = home / "sources" / other.relative_path
    bad_path = home / "sources" / bad.relative_path
    other_path.parent.mkdir(parents=True)
    other_path.write_bytes(other_content)
    os.utime(other_path, ns=(1_000_000_000_000_000_000, 1_000_000_000_000_000_000))
    bad_path.write_bytes(CONTENT[:-1] + b"!")

    assert resolve(bad) == bad_path
    assert bad_path.read_bytes() == CONTENT
    assert resolve(other) == other_path
    assert other_path.read_bytes() == other_content
    assert other_path.stat().st_mtime_ns == 1_000_000_000_000_000_000
    assert server.hits == {"/blob.bin": 1}
    assert _part_files(home) == []


def test_missing_file_without_download_names_it(home, tmp_path, monkeypatch):
    """A missing file with download=False is a FileNotFoundError naming the file (and where it was looked for)."""
    file = DataFile("weights/test/absent.bin", "http://127.0.0.1:9/absent.bin", sha256=_sha256(b""))
    with pytest.raises(FileNotFoundError, match="absent.bin") as caught:
        resolve(file, download=False)
    assert str(home / "sources" / file.relative_path) in str(caught.value)

    monkeypatch.setenv("SQUEEZEKIT_DATA_DIR", str(tmp_path / "data"))
    with pytest.raises(FileNotFoundError) as caught:
        resolve(file, download=False)
    assert str(tmp_path / "data" / file.relative_path) in str(caught.value)
    assert not home.exists()


@pytest.fixture
def counted_read_source(monkeypatch):
    """Replaces convert.read_source by a wrapper that counts calls and raises while ``allowed`` is False."""
    state = {"calls": 0, "allowed": True}
    real = convert.read_source

    def wrapper(entry):
        state["calls"] += 1
        if not state["allowed"]:
            raise AssertionError("read_source called although the converted cache should be used")
        return real(entry)

    monkeypatch.setattr(convert, "read_source", wrapper)
    return state


@pytest.mark.data
def test_converted_weights_are_cached_by_source_hash(data_dir, tmp_path, monkeypatch, counted_read_source):
    """The first load writes one .npz keyed by the entry checksum; the second load reads it without decoding."""
    monkeypatch.setenv("SQUEEZEKIT_DATA_DIR", str(data_dir))
    monkeypatch.setenv("SQUEEZEKIT_HOME", str(tmp_path / "home"))
    entry = get_weights_entry("squeezenet1_1")

    first = convert.pretrained_arrays(entry)
    stored = sorted((tmp_path / "home" / "converted").glob("*.npz"))
    assert len(stored) == 1 and entry.checksum[:16] in stored[0].name
    assert counted_read_source["calls"] == 1
    assert not (tmp_path / "home" / "sources").exists()  # sources were read in place from the data dir

    counted_read_source["allowed"] = False
    second = convert.pretrained_arrays(entry)
    assert second.keys() == first.keys()
    for key in first:
        np.testing.assert_array_equal(second[key], first[key])
    assert _part_files(tmp_path / "home") == []


@pytest.mark.data
@pytest.mark.parametrize("damage", ["truncated_half", "emptied", "garbage"])
def test_damaged_converted_cache_is_rebuilt(data_dir, tmp_path, monkeypatch, counted_read_source, damage):
    """A damaged converted .npz is rebuilt transparently from the verified sources, and is good again after."""
    monkeypatch.setenv("SQUEEZEKIT_DATA_DIR", str(data_dir))
    monkeypatch.setenv("SQUEEZEKIT_HOME", str(tmp_path / "home"))
    entry = get_weights_entry("squeezenet1_1")
    first = convert.pretrained_arrays(entry)
    (stored,) = (tmp_path / "home" / "converted").glob("*.npz")
    good = stored.read_bytes()
    stored.write_bytes({"truncated_half": good[: len(good) // 2], "emptied": b"", "garbage": b"not a zip file"}[damage])

    rebuilt = convert.pretrained_arrays(entry)

    assert counted_read_source["calls"] == 2
    assert rebuilt.keys() == first.keys()
    for key in first:
        np.testing.assert_array_equal(rebuilt[key], first[key])
    with np.load(stored, allow_pickle=False) as reloaded:
        assert sorted(reloaded.files) == sorted(first)
    assert record_path(stored).is_file()


@pytest.mark.data
@pytest.mark.parametrize("swap", ["another entry's arrays", "one weight altered", "no record (an old cache)"])
def test_a_wellformed_cache_with_the_wrong_contents_is_rebuilt_once(data_dir, tmp_path, monkeypatch,
                                                                     counted_read_source, caplog, swap):
    """A valid .npz under the right name but with other contents is caught by its checksum, rebuilt once,
    and said in one line; the next load uses the rebuilt file."""
    monkeypatch.setenv("SQUEEZEKIT_DATA_DIR", str(data_dir))
    monkeypatch.setenv("SQUEEZEKIT_HOME", str(tmp_path / "home"))
    entry = get_weights_entry("squeezenet1_1")
    first = convert.pretrained_arrays(entry)
    (stored,) = (tmp_path / "home" / "converted").glob("*.npz")
    if swap == "another entry's arrays":
        other = convert.pretrained_arrays(get_weights_entry("squeezenet1_0"))
        stored.write_bytes(next((tmp_path / "home" / "converted").glob("squeezenet1_0*.npz")).read_bytes())
        assert other["conv1/kernel"].shape != first["conv1/kernel"].shape  # v1.0: 7x7x3x96, v1.1: 3x3x3x64
    else:
        with np.load(stored) as loaded:
            arrays = {key: loaded[key] for key in loaded.files}
        if swap == "one weight altered":
            arrays["conv10/bias"] = arrays["conv10/bias"] + 1  # the recorded checksum no longer holds
            buffer = io.BytesIO()
            np.savez(buffer, **arrays)
            stored.write_bytes(buffer.getvalue())
        else:
            record_path(stored).unlink()
    calls = counted_read_source["calls"]

    with caplog.at_level("WARNING"):
        rebuilt = convert.pretrained_arrays(entry)
    assert counted_read_source["calls"] == calls + 1
    (line,) = [r.getMessage() for r in caplog.records if "rebuilding" in r.getMessage()]
    assert line.startswith(f"{stored}: ") and "rebuilding this cache of converted weights" in line
    assert "SQUEEZEKIT_HOME=" in line
    for key in first:
        np.testing.assert_array_equal(rebuilt[key], first[key])
    counted_read_source["allowed"] = False
    convert.pretrained_arrays(entry)  # healed: read from the cache again


@pytest.mark.parametrize("failing", ["replace", "fsync"])
def test_atomic_write_failure_keeps_old_file(tmp_path, monkeypatch, failing):
    """If an atomic write fails midway the old file keeps its content and no .part file remains."""
    path = tmp_path / "cache" / "file.npz"
    path.parent.mkdir()
    path.write_bytes(b"old content")

    def boom(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, failing, boom)
    with pytest.raises(OSError, match="No space left"):
        atomic_write_bytes(path, b"new content that never lands")
    monkeypatch.undo()

    assert path.read_bytes() == b"old content"
    assert _part_files(tmp_path) == []
    atomic_write_bytes(path, b"new content")  # and a later write succeeds
    assert path.read_bytes() == b"new content" and _part_files(tmp_path) == []


def test_a_write_killed_midway_leaves_nothing_once_the_next_write_ran(tmp_path):
    """SIGKILL during an atomic write leaves its .part file; the next write of that file removes it."""
    import signal
    import subprocess
    import sys

    target = tmp_path / "file.bin"
    script = (f"import os, signal\nfrom pathlib import Path\nimport squeezekit._resources as r\n"
              f"real = os.fsync\nos.fsync = lambda fd: os.kill(os.getpid(), signal.SIGKILL)\n"
              f"r.atomic_write_bytes(Path({str(target)!r}), b'x' * 1000)\n")
    proc = subprocess.run([sys.executable, "-c", script])
    assert proc.returncode == -signal.SIGKILL
    assert len(_part_files(tmp_path)) == 1 and not target.exists()
    atomic_write_bytes(target, b"whole")
    assert target.read_bytes() == b"whole" and _part_files(tmp_path) == []
