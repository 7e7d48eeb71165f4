"""The archive's storage: a directory (the default, under the state directory) or an
S3-compatible bucket, through pyarrow's filesystems.

Files are written once and never rewritten: a local file is written under a temporary name,
flushed to disk and renamed into place; an S3 object appears whole when its upload completes.
A crash mid-write therefore leaves either no file or a complete one. Readers get a clear
``ArchiveError`` naming the file when it is missing or unreadable.
"""

from __future__ import annotations

import os
import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from vultr_scraper_core.config import Config, Secrets, state_dir

# Read tables are kept up to a size in memory rather than a count: a plan page reads two files
# for each of 90 days (a count of 64 was emptied by every such page, so each read the disk
# again), and a day's file at ten times today's catalogue is a hundred times one at 1x.
_CACHED_BYTES = 128 * 2**20
_CACHED_DECODED = 64

T = TypeVar("T")


class ArchiveError(Exception):
    """An archive file could not be written or read; the message names it and says why."""


@dataclass(frozen=True)
class S3Options:
    endpoint_url: str = ""  # e.g. https://ewr1.vultrobjects.com; empty: AWS
    region: str = ""
    access_key: str | None = None
    secret_key: str | None = None


class Archive:
    """Parquet files under one root. Paths given to it are relative to that root."""

    def __init__(self, filesystem: pafs.FileSystem, root: str, *, local: bool) -> None:
        self.filesystem = filesystem
        self.root = root.rstrip("/")
        self.local = local
        self._cache: OrderedDict[str, pa.Table] = OrderedDict()
        self._cached_bytes = 0
        self._decoded: OrderedDict[tuple[str, str], Any] = OrderedDict()
        self._lock = threading.Lock()

    @property
    def where(self) -> str:
        return self.root if self.local else f"s3://{self.root}"

    def _full(self, path: str) -> str:
        return f"{self.root}/{path}"

    def write_table(self, path: str, table: pa.Table) -> int:
        """Write ``table`` as the Parquet file ``path`` (which must not exist); returns its size."""
        sink = pa.BufferOutputStream()
        pq.write_table(table, sink, compression="zstd")
        data = sink.getvalue().to_pybytes()
        full = self._full(path)
        try:
            if self.local:
                _write_local(Path(full), data)
            else:
                with self.filesystem.open_output_stream(full) as stream:
                    stream.write(data)
        except OSError as error:
            raise ArchiveError(f"cannot write archive file {self.where}/{path}: {error}") from None
        return len(data)

    def read_table(self, path: str) -> pa.Table:
        """The table in ``path`` (cached: files never change once written)."""
        with self._lock:
            cached = self._cache.get(path)
            if cached is not None:
                self._cache.move_to_end(path)
                return cached
        table = self._read(path)
        with self._lock:
            if path not in self._cache:  # another thread may have read it meanwhile
                self._cache[path] = table
                self._cached_bytes += table.nbytes
            while self._cached_bytes > _CACHED_BYTES and len(self._cache) > 1:
                _, dropped = self._cache.popitem(last=False)
                self._cached_bytes -= dropped.nbytes
        return table

    def read_decoded(self, path: str, decode: Callable[[pa.Table], T]) -> T:
        """``decode(table)`` of the file ``path``, kept (files never change once written, so
        an "as of" query decodes a day's checkpoint and flips once, not on every request).
        The result is shared: callers must not change it."""
        key = (path, f"{decode.__module__}.{decode.__qualname__}")
        with self._lock:
            if key in self._decoded:
                self._decoded.move_to_end(key)
                found: T = self._decoded[key]
                return found
        value = decode(self.read_table(path))
        with self._lock:
            self._decoded[key] = value
            while len(self._decoded) > _CACHED_DECODED:
                self._decoded.popitem(last=False)
        return value

    def _read(self, path: str) -> pa.Table:
        shown = f"{self.where}/{path}"
        try:
            with self.filesystem.open_input_file(self._full(path)) as source:
                data = source.readall()
        except FileNotFoundError:
            raise ArchiveError(f"archive file {shown} is missing") from None
        except OSError as error:
            reason = (
                "missing"
                if "not found" in str(error).lower() or "NoSuchKey" in str(error)
                else f"unreadable ({error})"
            )
            raise ArchiveError(f"archive file {shown} is {reason}") from None
        try:
            return pq.read_table(pa.BufferReader(data))
        except (pa.ArrowException, OSError, ValueError) as error:
            raise ArchiveError(
                f"archive file {shown} is unreadable (not valid Parquet: {error})"
            ) from None

    def list_dir(self, directory: str) -> list[str]:
        """Paths (relative to the root) of the files directly in ``directory``."""
        selector = pafs.FileSelector(self._full(directory), allow_not_found=True)
        try:
            infos = self.filesystem.get_file_info(selector)
        except OSError as error:
            raise ArchiveError(f"cannot list {self.where}/{directory}: {error}") from None
        prefix = self.root + "/"
        return sorted(
            info.path.removeprefix(prefix) for info in infos if info.type == pafs.FileType.File
        )

    def delete(self, path: str) -> None:
        try:
            self.filesystem.delete_file(self._full(path))
        except FileNotFoundError:
            return
        except OSError as error:
            raise ArchiveError(f"cannot delete {self.where}/{path}: {error}") from None

    def size(self, directory: str = "") -> int:
        """Bytes of every file under ``directory`` (the whole archive by default)."""
        base = self._full(directory) if directory else self.root
        selector = pafs.FileSelector(base, allow_not_found=True, recursive=True)
        infos = self.filesystem.get_file_info(selector)
        return sum(info.size or 0 for info in infos if info.type == pafs.FileType.File)


def _write_local(path: Path, data: bytes) -> None:
    if path.exists():
        raise OSError(f"{path} exists; archive files are written once")
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        with open(temporary, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)  # the rename itself survives a power cut
    finally:
        os.close(directory)


def open_archive(location: str, s3: S3Options | None = None) -> Archive:
    """``location`` is a directory path, or ``s3://bucket/prefix`` with ``s3`` options."""
    if location.startswith("s3://"):
        parts = urlsplit(location)
        if not parts.netloc:
            raise ArchiveError(f"{location}: an S3 location needs a bucket (s3://bucket/prefix)")
        options = s3 or S3Options()
        endpoint = urlsplit(options.endpoint_url) if options.endpoint_url else None
        filesystem = pafs.S3FileSystem(
            access_key=options.access_key,
            secret_key=options.secret_key,
            region=options.region or "us-east-1",
            endpoint_override=endpoint.netloc if endpoint else None,
            scheme=endpoint.scheme if endpoint else "https",
            background_writes=False,
        )
        root = f"{parts.netloc}{parts.path}".rstrip("/")
        return Archive(filesystem, root, local=False)
    path = Path(location).expanduser().absolute()
    return Archive(pafs.LocalFileSystem(), str(path), local=True)


def archive_from_config(config: Config, secrets: Secrets) -> Archive:
    """The archive ``[history] archive`` names: a directory (default: ``<state_dir>/archive``)
    or an S3-compatible bucket with the keys read from the ``s3_*_file`` secret files."""
    settings = config.history
    location = settings.archive or str(state_dir(config) / "archive")
    options = S3Options(
        endpoint_url=settings.s3_endpoint_url,
        region=settings.s3_region,
        access_key=secrets.s3_access_key,
        secret_key=secrets.s3_secret_key,
    )
    return open_archive(location, options)
