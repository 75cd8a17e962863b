"""Files in a sweep's storage, local or remote (`s3://...`), through pyarrow's filesystems:
the same layer Ray Tune uses for its own state, so a sweep folder works wherever Tune's does."""

from __future__ import annotations

from pathlib import Path

import pyarrow.fs


def _resolve(uri: str) -> tuple[pyarrow.fs.FileSystem, str]:
    if "://" not in uri:
        uri = str(Path(uri).resolve())
    return pyarrow.fs.FileSystem.from_uri(uri)


def exists(uri: str) -> bool:
    fs, path = _resolve(uri)
    return fs.get_file_info(path).type != pyarrow.fs.FileType.NotFound


def read_bytes(uri: str) -> bytes:
    fs, path = _resolve(uri)
    with fs.open_input_file(path) as f:
        return f.readall()


def write_text(uri: str, text: str) -> None:
    fs, path = _resolve(uri)
    fs.create_dir(path.rsplit("/", 1)[0], recursive=True)
    with fs.open_output_stream(path) as f:
        f.write(text.encode())


def remove_tree(uri: str) -> None:
    fs, path = _resolve(uri)
    if fs.get_file_info(path).type != pyarrow.fs.FileType.NotFound:
        fs.delete_dir(path)


def newest(uri: str, pattern_prefix: str) -> str | None:
    """The last (by name) file in folder `uri` whose name starts with the prefix."""
    fs, path = _resolve(uri)
    if fs.get_file_info(path).type == pyarrow.fs.FileType.NotFound:
        return None
    names = sorted(info.base_name for info in fs.get_file_info(pyarrow.fs.FileSelector(path))
                   if info.base_name.startswith(pattern_prefix))
    return f"{uri.rstrip('/')}/{names[-1]}" if names else None
