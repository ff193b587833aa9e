"""The lake's filesystem for Python: ``paths.lake`` (or any lake URL) to a pyarrow filesystem and a path.

``resolve(settings, url)`` returns ``(filesystem, path)`` for ``pyarrow.parquet`` and ``pyarrow.dataset``;
``filesystem(settings)`` is the filesystem alone. The lake URL takes three forms:

- a local path (or ``file:///...``): ``pyarrow.fs.LocalFileSystem``; relative paths are taken relative to
  the config file (``Settings.lake_url``).
- ``hdfs://host:port/path`` or ``hdfs:///path``: the URL Spark uses, which names the NameNode's RPC port.
  Python has no HDFS RPC client without native libhdfs, so it reaches the same NameNode over WebHDFS (HTTP)
  with fsspec's ``WebHDFS``, wrapped in ``pyarrow.fs.PyFileSystem``. The mapping RPC URL to HTTP address is
  explicit: ``lake.webhdfs_url`` (for the local stack, its discovery step fills it with the stack's NameNode).
  The user is ``lake.hdfs_user`` (the local stack's discovery fills in its generated user); WebHDFS refuses
  requests without one.
- ``s3://bucket/path``: ``pyarrow.fs.S3FileSystem`` with ``lake.s3_*`` (endpoint for S3-compatible stores;
  keys, when unset, from the usual AWS environment/credential chain; the local stack's discovery fills them for
  its S3-API server, :mod:`infra.local.s3`). Every request has a timeout
  (``lake.s3_timeout_s``) and AWS's standard retry strategy (``lake.s3_retries``).
"""
from __future__ import annotations

import posixpath
from dataclasses import dataclass
from urllib.parse import urlsplit

import pyarrow.fs as pafs

from meterlake.config import Settings
from meterlake.errors import UsageError


def resolve(settings: Settings, url: str | None = None) -> tuple[pafs.FileSystem, str]:
    """The filesystem holding ``url`` (default: the lake root) and the path to pass it."""
    url = settings.lake_url if url is None else url
    if "://" not in url:
        return pafs.LocalFileSystem(), str(settings.resolve(url))
    parts = urlsplit(url)
    if parts.scheme == "file":
        return pafs.LocalFileSystem(), parts.path
    if parts.scheme == "hdfs":
        return _webhdfs(settings, url), parts.path or "/"
    if parts.scheme == "s3":
        return _s3(settings), f"{parts.netloc}{parts.path}".rstrip("/")
    raise UsageError(f"unsupported lake URL {url!r}: use a local path, hdfs://host:port/path or s3://bucket/path")


@dataclass(frozen=True)
class Place:
    """A directory named by a URL or a local path (:func:`place`): the URL (a local path made absolute), its
    filesystem and the path within it; :meth:`url_of` turns a path on that filesystem back into a URL."""

    url: str
    fs: pafs.FileSystem
    root: str

    def url_of(self, fs_path: str) -> str:
        """The URL of ``fs_path``, a path under :attr:`root` (a local path is its own URL)."""
        if "://" not in self.url:
            return fs_path
        return self.url.rstrip("/") + "/" + posixpath.relpath(fs_path, self.root)


def place(settings: Settings, value: str) -> Place:
    """The directory ``value`` (a URL, or a local path relative to the config file)."""
    url = settings.resolve_url(value)
    return Place(url, *resolve(settings, url))


def filesystem(settings: Settings, url: str | None = None) -> pafs.FileSystem:
    """The pyarrow filesystem for the lake (or for ``url``)."""
    return resolve(settings, url)[0]


def webhdfs_address(settings: Settings, url: str) -> tuple[str, int]:
    """(host, port) of the WebHDFS server behind the ``hdfs://`` URL ``url``; see the module docstring."""
    if not settings.lake.webhdfs_url:
        raise UsageError(f"no WebHDFS address for {url}: set lake.webhdfs_url to its NameNode's WebHDFS address "
                         "(http://host:port)", url=url)
    http = urlsplit(settings.lake.webhdfs_url)
    if http.scheme != "http" or not http.hostname or not http.port:
        raise UsageError(f"lake.webhdfs_url must be http://host:port, not {settings.lake.webhdfs_url!r}")
    return http.hostname, http.port


def hdfs_user(settings: Settings) -> str:
    if not settings.lake.hdfs_user:
        raise UsageError(f"no HDFS user: set lake.hdfs_user or start the local stack in {settings.state_dir}")
    return settings.lake.hdfs_user


def _webhdfs(settings: Settings, url: str) -> pafs.FileSystem:
    from fsspec.implementations.webhdfs import WebHDFS

    host, port = webhdfs_address(settings, url)
    fs = WebHDFS(host=host, port=port, user=hdfs_user(settings))
    # fsspec's requests session has no timeout: a DataNode that stops answering would hang the caller forever
    adapter = _timeout_adapter(settings.lake.webhdfs_timeout_s, settings.lake.webhdfs_retries)
    fs.session.mount("http://", adapter)
    fs.session.mount("https://", adapter)
    return pafs.PyFileSystem(pafs.FSSpecHandler(fs))


def _timeout_adapter(timeout_s: float, retries: int):
    """A requests adapter that gives every request ``timeout_s`` (to connect, to send, and between bytes
    received) and retries reads (GET, HEAD: idempotent) ``retries`` times, with backoff, after a connect error or a
    timeout before the answer's headers. Writes are not retried: a create or an append may have happened before
    its answer was lost."""
    from requests.adapters import HTTPAdapter
    from urllib3.util.retry import Retry

    class Adapter(HTTPAdapter):
        def send(self, request, **kwargs):
            if kwargs.get("timeout") is None:
                kwargs["timeout"] = timeout_s
            return super().send(request, **kwargs)

    return Adapter(max_retries=Retry(total=retries, allowed_methods=frozenset({"GET", "HEAD"}), backoff_factor=0.5))


# WebHDFS answers that pass: fsspec raises them as RuntimeError or ValueError, not OSError
_TRANSIENT = ("safe mode", "safemode", "standbyexception", "not supported in state standby",
              "retriableexception", "quota",
              "could only be written to 0", "could only be replicated to 0", "not replicated yet",
              "failed to find datanode", "startup mode")


def transient(exc: BaseException) -> bool:
    """Is ``exc`` a lake failure worth waiting out (and retrying): an OSError (I/O, disk full, connection), or a
    NameNode in safe mode or standby, a quota exceeded, no DataNode to write to? Pure."""
    if isinstance(exc, OSError):
        return True
    if isinstance(exc, RuntimeError | ValueError):
        text = str(exc).lower()
        return any(marker in text for marker in _TRANSIENT)
    return False


def _s3(settings: Settings) -> pafs.FileSystem:
    return s3_filesystem(settings.lake)


def s3_filesystem(lake) -> pafs.FileSystem:
    """A pyarrow S3 filesystem of the ``[lake]`` settings ``lake`` (endpoint, region, keys, timeouts, retries)."""
    import os

    # The AWS SDK in pyarrow signs uploads with its newer "flexible" checksums by default, which S3-compatible
    # stores (s3proxy, older MinIO, Ceph) reject; AWS accepts both. Only when the deployment has not chosen.
    os.environ.setdefault("AWS_REQUEST_CHECKSUM_CALCULATION", "WHEN_REQUIRED")
    os.environ.setdefault("AWS_RESPONSE_CHECKSUM_VALIDATION", "WHEN_REQUIRED")
    options: dict = {}
    if lake.s3_endpoint:
        endpoint = urlsplit(lake.s3_endpoint)
        if endpoint.scheme not in ("http", "https") or not endpoint.netloc:
            raise UsageError(f"lake.s3_endpoint must be http(s)://host:port, not {lake.s3_endpoint!r}")
        options.update(endpoint_override=endpoint.netloc, scheme=endpoint.scheme)
    if lake.s3_region:
        options["region"] = lake.s3_region
    # without these a store that stops answering hangs the caller; AWS's standard strategy retries throttling and
    # transient errors with backoff (idempotent on S3: a retried PUT of the same object gives the same object)
    options.update(connect_timeout=lake.s3_timeout_s, request_timeout=lake.s3_timeout_s,
                   retry_strategy=pafs.AwsStandardS3RetryStrategy(max_attempts=lake.s3_retries + 1))
    if lake.s3_access_key:
        options.update(access_key=lake.s3_access_key, secret_key=lake.s3_secret_key)
    return pafs.S3FileSystem(**options)
