"""Files in a sweep's storage, local or remote (`s3://...`), through pyarrow's filesystems:
the same layer Ray Tune uses for its own state, so a sweep folder works wherever Tune's does
(`injection.location` holds the reads and writes that corpora share)."""

from __future__ import annotations

import pyarrow.fs

from injection.location import exists, filesystem, read_bytes, write_text

__all__ = ["exists", "read_bytes", "write_text", "remove_tree", "newest"]


def remove_tree(uri: str) -> None:
    fs, path = filesystem(uri)
    if fs.get_file_info(path).type != pyarrow.fs.FileType.NotFound:
        fs.delete_dir(path)


def newest(uri: str, pattern_prefix: str) -> str | None:
    """The last (by name) file in folder `uri` whose name starts with the prefix."""
    fs, path = filesystem(uri)
    if fs.get_file_info(path).type == pyarrow.fs.FileType.NotFound:
        return None
    names = sorted(info.base_name for info in fs.get_file_info(pyarrow.fs.FileSelector(path))
                   if info.base_name.startswith(pattern_prefix))
    return f"{uri.rstrip('/')}/{names[-1]}" if names else None
