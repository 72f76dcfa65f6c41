"""Media storage behind one interface: a local directory or S3-compatible object storage (boto3, extra ``storage``).

An object is named by a URI string, what other code stores as "file path or s3:// URI": a plain absolute path for
:class:`LocalStorage`, ``s3://bucket/prefix/key`` for :class:`S3Storage`. Everything is sync; async callers use
``asyncio.to_thread``."""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import urllib.parse
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from boto3.s3.transfer import TransferConfig
    from mypy_boto3_s3 import S3Client


class StorageError(RuntimeError):
    """A missing object, a bad URI or a backend failure; the message names the URI."""


class Storage(Protocol):
    """Where services put and get media files."""

    scheme: str

    def put_file(self, local: Path, key: str, *, content_type: str | None = None) -> str:
        """Store ``local`` under ``key``; returns the object's URI."""
        ...

    def get_file(self, uri: str, local: Path) -> Path:
        """Copy the object to ``local`` atomically (temp file, then replace); returns ``local``."""
        ...

    def exists(self, uri: str) -> bool:
        """True when the object exists."""
        ...

    def delete(self, uri: str) -> None:
        """Remove the object; no error when it is absent."""
        ...

    def url(self, uri: str, *, expires_s: int = 3600) -> str:
        """A URL to read the object: presigned GET for S3, ``file://`` for local."""
        ...


def _clean_key(key: str) -> str:
    """A relative '/'-separated key; empty, absolute and '..' keys are refused."""
    parts = PurePosixPath(key.replace("\\", "/")).parts
    if not key or key.startswith(("/", "\\")) or not parts or ".." in parts:
        raise StorageError(f"bad storage key {key!r}: must be relative and without '..'")
    return "/".join(p for p in parts if p != ".")


def _atomic_copy(src: Path, dst: Path) -> Path:
    """Copy ``src`` to ``dst`` through a temp file in ``dst``'s directory, then ``os.replace``."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dst.parent, prefix=f".{dst.name}.", suffix=".part")
    os.close(fd)
    try:
        shutil.copyfile(src, tmp)
        os.replace(tmp, dst)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return dst


class LocalStorage:
    """Objects as files under ``root``; URIs are their absolute paths (``file://`` URLs are accepted too)."""

    scheme = "file"

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).expanduser().resolve()
        self.root.mkdir(parents=True, exist_ok=True)

    def _path(self, uri: str) -> Path:
        raw = urllib.parse.unquote(uri[len("file://") :]) if uri.startswith("file://") else uri
        path = Path(raw).resolve()
        if not path.is_relative_to(self.root):
            raise StorageError(f"{uri} is not under the storage root {self.root}")
        return path

    def put_file(self, local: Path, key: str, *, content_type: str | None = None) -> str:
        """Copy ``local`` to ``root/key`` (atomically); ``content_type`` is not kept."""
        target = self.root / _clean_key(key)
        try:
            _atomic_copy(Path(local), target)
        except OSError as exc:
            raise StorageError(f"cannot store {local} as {target}: {exc}") from exc
        return str(target)

    def get_file(self, uri: str, local: Path) -> Path:
        """Copy the file to ``local`` (atomically)."""
        src = self._path(uri)
        if not src.is_file():
            raise StorageError(f"no such object: {uri}")
        try:
            return _atomic_copy(src, Path(local))
        except OSError as exc:
            raise StorageError(f"cannot copy {uri} to {local}: {exc}") from exc

    def exists(self, uri: str) -> bool:
        """True when the file exists."""
        return self._path(uri).is_file()

    def delete(self, uri: str) -> None:
        """Remove the file if it is there."""
        self._path(uri).unlink(missing_ok=True)

    def url(self, uri: str, *, expires_s: int = 3600) -> str:
        """The ``file://`` URL of the file (``expires_s`` is ignored)."""
        return self._path(uri).as_uri()


def parse_s3_uri(uri: str) -> tuple[str, str]:
    """``s3://bucket/key`` → (bucket, key); StorageError for anything else."""
    parsed = urllib.parse.urlsplit(uri)
    if parsed.scheme != "s3" or not parsed.netloc:
        raise StorageError(f"not an s3:// URI: {uri!r}")
    return parsed.netloc, parsed.path.lstrip("/")


class S3Storage:
    """Objects in an S3 bucket (AWS or any S3-compatible server) under an optional key prefix.

    Large files go up in parts (``transfer_config``, default boto3's 8 MiB threshold); every upload asks for
    server-side encryption ``server_side_encryption`` (``"AES256"``; ``None`` to send no header)."""

    scheme = "s3"

    def __init__(
        self,
        bucket: str,
        *,
        prefix: str = "",
        endpoint_url: str | None = None,
        region: str = "us-east-1",
        access_key: str | None = None,
        secret_key: str | None = None,
        create_bucket: bool = False,
        server_side_encryption: str | None = "AES256",
        transfer_config: TransferConfig | None = None,
    ) -> None:
        try:
            import boto3
            from boto3.s3.transfer import TransferConfig
            from botocore.config import Config
        except ImportError as exc:  # pragma: no cover - install problem
            raise StorageError("S3 storage needs boto3 (pip install 'creatormesh-common[storage]')") from exc
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.server_side_encryption = server_side_encryption
        self.transfer_config = transfer_config or TransferConfig()
        config = Config(
            signature_version="s3v4",
            s3={"addressing_style": "path" if endpoint_url else "auto"},
            retries={"max_attempts": 5, "mode": "standard"},
        )
        self.client: S3Client = boto3.client(
            "s3",
            endpoint_url=endpoint_url,
            region_name=region,
            aws_access_key_id=access_key,
            aws_secret_access_key=secret_key,
            config=config,
        )
        if create_bucket:
            self.create_bucket(region)

    def create_bucket(self, region: str = "us-east-1") -> None:
        """Create the bucket unless it exists."""
        from botocore.exceptions import ClientError

        try:
            self.client.head_bucket(Bucket=self.bucket)
            return
        except ClientError:
            pass
        try:
            if region == "us-east-1":
                self.client.create_bucket(Bucket=self.bucket)
            else:
                self.client.create_bucket(
                    Bucket=self.bucket,
                    CreateBucketConfiguration={"LocationConstraint": region},  # type: ignore[typeddict-item]
                )
        except ClientError as exc:
            if _code(exc) not in {"BucketAlreadyOwnedByYou", "BucketAlreadyExists"}:
                raise StorageError(f"cannot create bucket s3://{self.bucket}: {exc}") from exc

    def _key(self, uri: str) -> str:
        bucket, key = parse_s3_uri(uri)
        if bucket != self.bucket or not key:
            raise StorageError(f"{uri} is not an object of s3://{self.bucket}")
        return key

    def uri_for(self, key: str) -> str:
        """The URI ``put_file`` gives ``key``."""
        full = f"{self.prefix}/{_clean_key(key)}" if self.prefix else _clean_key(key)
        return f"s3://{self.bucket}/{full}"

    def put_file(self, local: Path, key: str, *, content_type: str | None = None) -> str:
        """Upload ``local`` (multipart above the transfer threshold)."""
        uri = self.uri_for(key)
        extra: dict[str, Any] = {}
        if content_type:
            extra["ContentType"] = content_type
        if self.server_side_encryption:
            extra["ServerSideEncryption"] = self.server_side_encryption
        try:
            self.client.upload_file(
                str(local), self.bucket, self._key(uri), ExtraArgs=extra, Config=self.transfer_config
            )
        except Exception as exc:
            raise StorageError(f"cannot upload {local} to {uri}: {exc}") from exc
        return uri

    def get_file(self, uri: str, local: Path) -> Path:
        """Download to a temp file next to ``local``, then replace ``local``."""
        key = self._key(uri)
        local = Path(local)
        local.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=local.parent, prefix=f".{local.name}.", suffix=".part")
        os.close(fd)
        try:
            self.client.download_file(self.bucket, key, tmp, Config=self.transfer_config)
            os.replace(tmp, local)
        except Exception as exc:
            Path(tmp).unlink(missing_ok=True)
            if _code(exc) in {"404", "NoSuchKey", "NotFound"}:
                raise StorageError(f"no such object: {uri}") from exc
            raise StorageError(f"cannot download {uri}: {exc}") from exc
        return local

    def exists(self, uri: str) -> bool:
        """HEAD the object."""
        try:
            self.client.head_object(Bucket=self.bucket, Key=self._key(uri))
        except Exception as exc:
            if _code(exc) in {"404", "NoSuchKey", "NotFound"}:
                return False
            raise StorageError(f"cannot check {uri}: {exc}") from exc
        return True

    def delete(self, uri: str) -> None:
        """Delete the object (S3 answers success when it is absent)."""
        try:
            self.client.delete_object(Bucket=self.bucket, Key=self._key(uri))
        except Exception as exc:
            raise StorageError(f"cannot delete {uri}: {exc}") from exc

    def url(self, uri: str, *, expires_s: int = 3600) -> str:
        """A presigned GET URL valid for ``expires_s`` seconds."""
        try:
            return self.client.generate_presigned_url(
                "get_object", Params={"Bucket": self.bucket, "Key": self._key(uri)}, ExpiresIn=expires_s
            )
        except Exception as exc:
            raise StorageError(f"cannot presign {uri}: {exc}") from exc


def _code(exc: BaseException) -> str:
    """The S3 error code of a botocore ClientError ('' for anything else)."""
    response = getattr(exc, "response", None)
    return str(response.get("Error", {}).get("Code", "")) if isinstance(response, dict) else ""


class StorageOptions(Protocol):
    """The storage fields a service's settings carry (stream_clipper's and video_diffusion's do)."""

    @property
    def storage(self) -> str: ...
    @property
    def s3_endpoint_url(self) -> str: ...
    @property
    def s3_region(self) -> str: ...
    @property
    def s3_access_key(self) -> str: ...
    @property
    def s3_secret_key(self) -> str: ...


def storage_from(settings: StorageOptions) -> Storage:
    """:func:`open_storage` for a service's settings: its location, and its S3 options where set."""
    return open_storage(
        settings.storage,
        endpoint_url=settings.s3_endpoint_url or None,
        region=settings.s3_region,
        access_key=settings.s3_access_key or None,
        secret_key=settings.s3_secret_key or None,
    )


def open_storage(location: str, **s3_options: Any) -> Storage:
    """``/path`` or ``file:///path`` → LocalStorage; ``s3://bucket/prefix`` → S3Storage (``s3_options`` passed on)."""
    if location.startswith("s3://"):
        bucket, prefix = parse_s3_uri(location)
        return S3Storage(bucket, prefix=prefix, **s3_options)
    if location.startswith("file://"):
        return LocalStorage(urllib.parse.unquote(location[len("file://") :]))
    if "://" in location or not location:
        raise StorageError(f"unsupported storage location {location!r}: use a path, file:// or s3://")
    return LocalStorage(location)


def fetch_local(uri: str, cache_dir: Path, storage: Storage | None = None) -> Path:
    """A local path for any URI: a plain path (or ``file://``) as is, an ``s3://`` object downloaded into
    ``cache_dir`` (once: objects are treated as immutable) with ``storage`` or a default-configured S3Storage."""
    if not uri.startswith("s3://"):
        path = Path(urllib.parse.unquote(uri[len("file://") :]) if uri.startswith("file://") else uri)
        if not path.is_file():
            raise StorageError(f"no such file: {uri}")
        return path
    bucket, key = parse_s3_uri(uri)
    if not key:
        raise StorageError(f"no object key in {uri!r}")
    digest = hashlib.sha256(uri.encode()).hexdigest()[:16]
    target = Path(cache_dir) / digest / (PurePosixPath(key).name or "object")
    if target.is_file():
        return target
    if storage is None:
        storage = S3Storage(bucket)
    return storage.get_file(uri, target)
