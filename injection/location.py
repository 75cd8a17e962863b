"""Where data lives: a local folder or an object-store URI (`s3://`, `gs://`), read and written
through pyarrow's filesystems, the layer Ray Tune uses for its own storage. Credentials and
endpoint come from the environment as AWS tools read them (`AWS_ENDPOINT_URL` included), or
from the node's instance profile / service account.

A remote file read for training is cached on the node that reads it (`local_copy`): downloaded
once, under a lock, beside its final name and renamed into place, so the workers of one node
share one copy and a half-downloaded file never looks finished.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import uuid
from pathlib import Path

import pyarrow.fs

from injection.cache import cache_root

REMOTE = ("s3://", "gs://")
COPY_BUFFER = 8 << 20  # bytes per read while downloading


def is_remote(location: str | Path) -> bool:
    return str(location).startswith(REMOTE)


def normalise(location: str | Path) -> str:
    """A URI without its trailing slash, or a local path made absolute."""
    text = str(location)
    if is_remote(text):
        return text.rstrip("/")
    if "://" in text:
        raise ValueError(f"{text}: only local folders and s3:// or gs:// URIs are supported")
    return str(Path(text).expanduser().resolve())


def filesystem(location: str | Path) -> tuple[pyarrow.fs.FileSystem, str]:
    text = str(location)
    if "://" not in text:
        text = str(Path(text).resolve())
    return pyarrow.fs.FileSystem.from_uri(text)


def join(location: str | Path, *names: str) -> str:
    return "/".join([str(location).rstrip("/"), *names])


def exists(location: str | Path) -> bool:
    fs, path = filesystem(location)
    return fs.get_file_info(path).type != pyarrow.fs.FileType.NotFound


def is_file(location: str | Path) -> bool:
    fs, path = filesystem(location)
    return fs.get_file_info(path).type == pyarrow.fs.FileType.File


def read_bytes(location: str | Path) -> bytes:
    fs, path = filesystem(location)
    with fs.open_input_file(path) as f:
        return f.readall()


def read_text(location: str | Path) -> str:
    return read_bytes(location).decode()


def write_text(location: str | Path, text: str) -> None:
    fs, path = filesystem(location)
    fs.create_dir(path.rsplit("/", 1)[0], recursive=True)
    with fs.open_output_stream(path) as f:
        f.write(text.encode())


def files(location: str | Path) -> dict[str, int]:
    """The files directly in folder `location`: name -> size in bytes."""
    fs, path = filesystem(location)
    return {info.base_name: info.size for info in fs.get_file_info(pyarrow.fs.FileSelector(
        path, allow_not_found=True)) if info.type == pyarrow.fs.FileType.File}


def read_range(location: str | Path, start: int, length: int) -> bytes:
    fs, path = filesystem(location)
    with fs.open_input_file(path) as f:
        return f.read_at(length, start)


def upload(folder: Path, location: str, last: str | None = None) -> None:
    """Copy every file under `folder` to `location`, the file named `last` after all others
    (a manifest: a reader never finds it beside missing files)."""
    fs, root = filesystem(location)
    names = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
    for name in sorted(names, key=lambda n: n == last):
        target = f"{root}/{name}"
        fs.create_dir(target.rsplit("/", 1)[0], recursive=True)
        with open(folder / name, "rb") as source, fs.open_output_stream(target) as out:
            while chunk := source.read(COPY_BUFFER):
                out.write(chunk)


def local_copy(location: str, size: int) -> Path:
    """A local path of `location`'s bytes: itself when local, else this node's cached copy
    (downloaded the first time any process of the node asks; `size` bytes expected)."""
    if not is_remote(location):
        return Path(location)
    key = hashlib.sha256(location.encode()).hexdigest()[:16]
    path = cache_root() / "remote" / key / location.rsplit("/", 1)[1]
    if path.is_file() and path.stat().st_size == size:
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.parent / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another worker of this node may be downloading it
        if not (path.is_file() and path.stat().st_size == size):
            _download(location, path, size)
    return path


def _download(location: str, path: Path, size: int) -> None:
    fs, remote = filesystem(location)
    partial = path.parent / f".{path.name}.{uuid.uuid4().hex}.partial"
    try:
        with fs.open_input_stream(remote) as source, open(partial, "wb") as out:
            while chunk := source.read(COPY_BUFFER):
                out.write(chunk)
        if partial.stat().st_size != size:
            raise OSError(f"{location}: read {partial.stat().st_size} bytes, expected {size} "
                          "(the file changed since its manifest was written?)")
        os.rename(partial, path)
    finally:
        partial.unlink(missing_ok=True)
