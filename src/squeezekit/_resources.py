"""Third-party files (weights, class lists) found locally or downloaded, always hash-checked.

Resolution order for a ``DataFile``:
1. ``SQUEEZEKIT_DATA_DIR`` (the layout of the project's shared data folder), read in place;
2. the cache ``SQUEEZEKIT_HOME`` (default ``~/.cache/squeezekit``), under ``sources/``;
3. a download from the file's public address into that cache.

Every file is checked against its SHA-256 before use. Downloads go to a temporary file in the same
folder, are hashed, then renamed into place, so an interrupted or corrupted download never leaves a
file that looks complete. A cached copy that fails its hash is replaced by a fresh download; a file in
``SQUEEZEKIT_DATA_DIR`` that fails it is an error (that folder belongs to the user).
"""

from __future__ import annotations

import glob
import hashlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from squeezekit.errors import DownloadError, WeightFileError

DATA_DIR_VARIABLE = "SQUEEZEKIT_DATA_DIR"
HOME_VARIABLE = "SQUEEZEKIT_HOME"


@dataclass(frozen=True)
class DataFile:
    """A third-party file: where it sits in the data folder, where it comes from, what it hashes to."""

    relative_path: str  # e.g. "weights/squeezenet_v1.1_openvino_ir_fp16/squeezenet1.1.bin"
    url: str
    sha256: str | None
    size: int | None = None
    # Files known only by their id in a git repository: sha1 of b"blob <size>\0" + content.
    git_blob_sha1: str | None = None

    def __post_init__(self) -> None:
        if not (self.sha256 or self.git_blob_sha1):
            raise ValueError(f"{self.relative_path}: a DataFile needs a sha256 or a git_blob_sha1")

    @property
    def expected(self) -> str:
        return f"sha256 {self.sha256}" if self.sha256 else f"git blob id {self.git_blob_sha1}"

    def digest_of(self, path: str | os.PathLike) -> str:
        """The file's digest of the kind this DataFile is checked with."""
        if self.sha256:
            return sha256_of(path)
        size = os.path.getsize(path)
        digest = hashlib.sha1(b"blob %d\0" % size)
        with open(path, "rb") as handle:
            while block := handle.read(1 << 20):
                digest.update(block)
        return digest.hexdigest()

    def matches(self, path: str | os.PathLike) -> bool:
        return self.digest_of(path) == (self.sha256 or self.git_blob_sha1)

    @property
    def filename(self) -> str:
        return self.relative_path.rsplit("/", 1)[-1]


def cache_dir() -> Path:
    return Path(os.environ.get(HOME_VARIABLE) or Path.home() / ".cache" / "squeezekit").expanduser()


def data_dir() -> Path | None:
    value = os.environ.get(DATA_DIR_VARIABLE)
    return Path(value).expanduser() if value else None


def sha256_of(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def _hash_error(path: Path, file: DataFile) -> WeightFileError:
    size = path.stat().st_size
    expected_size = f" and {file.size:,} bytes" if file.size else ""
    return WeightFileError(
        path,
        f"{size:,} bytes that do not match the expected {file.expected}{expected_size}; "
        "the file is truncated, altered or a different release",
    )


def resolve(file: DataFile, *, download: bool = True) -> Path:
    """A verified local path for ``file`` (see the module docstring for the order)."""
    local_root = data_dir()
    if local_root is not None:
        candidate = local_root / file.relative_path
        if candidate.is_file():
            if not file.matches(candidate):
                raise _hash_error(candidate, file)
            return candidate
    cached = cache_dir() / "sources" / file.relative_path
    if cached.is_file():
        if file.matches(cached):
            return cached
        # A bad cached copy (disk fault, an older squeezekit's partial write) is ours to replace.
    if not download:
        where = f"{local_root / file.relative_path} nor " if local_root else ""
        raise FileNotFoundError(f"{file.filename}: found neither {where}{cached}")
    return download_file(file, cached)


def _read_block(response, url: str) -> bytes:
    """The next block of a download; a network failure mid-body becomes a WeightFileError naming the URL."""
    import http.client

    try:
        return response.read(1 << 16)
    except (OSError, http.client.HTTPException) as error:
        raise DownloadError(url, f"the download broke off ({error!r}); nothing was kept") from error


def download_file(file: DataFile, destination: Path) -> Path:
    """Download ``file.url`` to ``destination`` atomically, with a progress bar, and verify the hash."""
    import urllib.error
    import urllib.request  # here, not at module level: it costs ~40 ms at every start of the CLI

    from squeezekit._progress import progress_bar

    destination.parent.mkdir(parents=True, exist_ok=True)
    handle = _temporary_beside(destination)
    temporary = Path(handle.name)
    try:
        with handle:
            try:
                response = urllib.request.urlopen(file.url, timeout=60)
            except (urllib.error.URLError, OSError) as error:
                raise DownloadError(
                    destination,
                    f"could not download {file.url} ({error}); without network access, set {DATA_DIR_VARIABLE} "
                    f"to a folder holding {file.relative_path}",
                ) from None
            with response:
                total = int(response.headers.get("Content-Length") or 0) or file.size
                with progress_bar(total=total, desc=f"downloading {file.filename}", unit="B", unit_scale=True) as bar:
                    while block := _read_block(response, file.url):
                        handle.write(block)
                        bar.update(len(block))
            handle.flush()
            os.fsync(handle.fileno())
        make_readable(temporary)
        if not file.matches(temporary):
            raise WeightFileError(file.url, f"the download does not match the expected {file.expected}")
        os.replace(temporary, destination)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return destination


def writer_is_gone(pid: str) -> bool:
    """Whether the process whose pid a temporary name carries has ended (so what it left is garbage).
    Not a pid, or a live process (of another user too): False, and the file is left alone."""
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except (ValueError, OSError):
        return False
    return False


def _temporary_beside(path: Path):
    """An open temporary file ``.NAME.PID.XXXX.part`` beside ``path``. Those of processes that are gone (a
    SIGKILL mid-write) are removed first, so interrupted writes never accumulate."""
    for stale in path.parent.glob(f".{glob.escape(path.name)}.*.part"):
        if writer_is_gone(stale.name[len(path.name) + 2:].split(".")[0]):
            stale.unlink(missing_ok=True)
    return tempfile.NamedTemporaryFile(dir=path.parent, prefix=f".{path.name}.{os.getpid()}.", suffix=".part",
                                       delete=False)


def make_readable(path) -> None:
    """Temporary files are created private (0600); give the final file the usual permissions."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, 0o666 & ~umask)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file and a rename: readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = _temporary_beside(path)
    try:
        with handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        make_readable(handle.name)
        os.replace(handle.name, path)
    except BaseException:
        Path(handle.name).unlink(missing_ok=True)
        raise
