"""Storage: the local backend on a temp dir, the S3 backend against a real s3rver (`s3_endpoint`)."""

from __future__ import annotations

import os
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from boto3.s3.transfer import TransferConfig

from creatormesh.common.runtime.s3_server import ACCESS_KEY, SECRET_KEY
from creatormesh.common.storage import LocalStorage, S3Storage, StorageError, fetch_local, open_storage

MiB = 1024 * 1024


def blob(path: Path, size: int) -> Path:
    path.write_bytes(os.urandom(size))
    return path


def s3(endpoint: str, bucket: str, **options: Any) -> S3Storage:
    return S3Storage(
        bucket, endpoint_url=endpoint, access_key=ACCESS_KEY, secret_key=SECRET_KEY, create_bucket=True, **options
    )


# --- local ---------------------------------------------------------------------------------------------------------


def test_local_put_get_exists_delete_url(tmp_path: Path) -> None:
    store = LocalStorage(tmp_path / "root")
    src = blob(tmp_path / "clip.mp4", 4096)
    uri = store.put_file(src, "clips/2026/clip.mp4", content_type="video/mp4")
    assert uri == str((tmp_path / "root" / "clips" / "2026" / "clip.mp4").resolve())
    assert Path(uri).is_absolute() and store.exists(uri)
    out = store.get_file(uri, tmp_path / "out" / "copy.mp4")
    assert out.read_bytes() == src.read_bytes()
    url = store.url(uri)
    assert url.startswith("file://")
    with urllib.request.urlopen(url) as response:
        assert response.read() == src.read_bytes()
    store.delete(uri)
    assert not store.exists(uri)
    store.delete(uri)  # absent: no error
    with pytest.raises(StorageError, match="no such object"):
        store.get_file(uri, tmp_path / "x")


@pytest.mark.parametrize("key", ["../escape.mp4", "a/../../b.mp4", "/etc/passwd", "", "a/..\\..\\b"])
def test_local_rejects_keys_escaping_the_root(tmp_path: Path, key: str) -> None:
    store = LocalStorage(tmp_path / "root")
    with pytest.raises(StorageError):
        store.put_file(blob(tmp_path / "f", 10), key)
    assert not (tmp_path / "escape.mp4").exists() and not (tmp_path / "b.mp4").exists()


def test_local_refuses_uris_outside_the_root(tmp_path: Path) -> None:
    store = LocalStorage(tmp_path / "root")
    outside = blob(tmp_path / "outside.bin", 10)
    with pytest.raises(StorageError, match=str(outside)):
        store.delete(str(outside))
    with pytest.raises(StorageError):
        store.exists(str(tmp_path / "root" / ".." / "outside.bin"))
    assert outside.exists()


def test_local_get_is_atomic(tmp_path: Path) -> None:
    store = LocalStorage(tmp_path / "root")
    uri = store.put_file(blob(tmp_path / "new", 100_000), "v.bin")
    dest = tmp_path / "dest" / "v.bin"
    dest.parent.mkdir()
    dest.write_bytes(b"old contents")
    with dest.open("rb") as reader:  # a reader of the old file keeps seeing it: replaced, not rewritten in place
        store.get_file(uri, dest)
        assert reader.read() == b"old contents"
    assert dest.read_bytes() == (tmp_path / "new").read_bytes()
    with pytest.raises(StorageError):
        store.get_file(str(tmp_path / "root" / "missing.bin"), dest)
    assert dest.read_bytes() == (tmp_path / "new").read_bytes()  # a failed get leaves the old file
    assert sorted(p.name for p in dest.parent.iterdir()) == ["v.bin"]  # no temp files left


# --- S3 (real s3rver) ----------------------------------------------------------------------------------------------


def test_s3_round_trip(s3_endpoint: str, unique: str, tmp_path: Path) -> None:
    store = s3(s3_endpoint, f"media-{unique}", prefix="clips/")
    sse: list[Any] = []
    store.client.meta.events.register(
        "before-send.s3.PutObject", lambda request, **_: sse.append(request.headers.get("x-amz-server-side-encryption"))
    )
    src = blob(tmp_path / "small.mp4", 10_000)
    uri = store.put_file(src, "a/small.mp4", content_type="video/mp4")
    assert sse == [b"AES256"]  # SSE asked for (s3rver ignores it)
    assert uri == f"s3://media-{unique}/clips/a/small.mp4"
    head = store.client.head_object(Bucket=f"media-{unique}", Key="clips/a/small.mp4")
    assert head["ContentType"] == "video/mp4" and head["ContentLength"] == 10_000
    assert store.exists(uri)
    assert not store.exists(f"s3://media-{unique}/clips/a/other.mp4")
    assert store.get_file(uri, tmp_path / "dl" / "small.mp4").read_bytes() == src.read_bytes()
    with urllib.request.urlopen(store.url(uri, expires_s=60), timeout=10) as response:
        assert response.read() == src.read_bytes()
    store.delete(uri)
    assert not store.exists(uri)
    store.delete(uri)  # absent: no error


def test_s3_multipart_upload(s3_endpoint: str, unique: str, tmp_path: Path) -> None:
    config = TransferConfig(multipart_threshold=1 * MiB, multipart_chunksize=5 * MiB)  # S3's minimum part size
    store = s3(s3_endpoint, f"big-{unique}", transfer_config=config)
    calls: list[str] = []  # the S3 operations boto3 sends (s3rver's ETag of a multipart object is a plain MD5)
    store.client.meta.events.register("before-call.s3.*", lambda model, **_: calls.append(model.name))
    src = blob(tmp_path / "big.mp4", 6 * MiB)
    uri = store.put_file(src, "big.mp4")
    assert sorted(calls) == ["CompleteMultipartUpload", "CreateMultipartUpload", "UploadPart", "UploadPart"]
    calls.clear()
    store.put_file(blob(tmp_path / "small.mp4", 1000), "small.mp4")
    assert calls == ["PutObject"]
    assert store.get_file(uri, tmp_path / "big-copy.mp4").read_bytes() == src.read_bytes()


def test_s3_missing_object_and_foreign_uris(s3_endpoint: str, unique: str, tmp_path: Path) -> None:
    store = s3(s3_endpoint, f"miss-{unique}")
    missing = f"s3://miss-{unique}/nope.mp4"
    dest = tmp_path / "dest.mp4"
    dest.write_bytes(b"keep")
    with pytest.raises(StorageError, match=missing):
        store.get_file(missing, dest)
    assert dest.read_bytes() == b"keep" and sorted(p.name for p in tmp_path.iterdir()) == ["dest.mp4"]
    with pytest.raises(StorageError, match="not an object of"):
        store.exists(f"s3://other-{unique}/x.mp4")
    with pytest.raises(StorageError, match="not an s3:// URI"):
        store.exists("/tmp/x.mp4")
    with pytest.raises(StorageError):
        store.put_file(blob(tmp_path / "f", 10), "../x")


def test_open_storage_parsing(s3_endpoint: str, unique: str, tmp_path: Path) -> None:
    local = open_storage(str(tmp_path / "a"))
    assert isinstance(local, LocalStorage) and local.root == (tmp_path / "a").resolve() and local.scheme == "file"
    via_url = open_storage((tmp_path / "b").as_uri())
    assert isinstance(via_url, LocalStorage) and via_url.root == (tmp_path / "b").resolve()
    remote = open_storage(
        f"s3://open-{unique}/renders/v1/",
        endpoint_url=s3_endpoint, access_key=ACCESS_KEY, secret_key=SECRET_KEY, create_bucket=True,
    )  # fmt: skip
    assert isinstance(remote, S3Storage) and remote.scheme == "s3"
    assert (remote.bucket, remote.prefix) == (f"open-{unique}", "renders/v1")
    assert remote.put_file(blob(tmp_path / "v.mp4", 10), "v.mp4") == f"s3://open-{unique}/renders/v1/v.mp4"
    for bad in ["http://example.com/x", "gs://bucket/x", "s3://", ""]:
        with pytest.raises(StorageError):
            open_storage(bad)


def test_fetch_local_for_paths_and_s3(s3_endpoint: str, unique: str, tmp_path: Path) -> None:
    src = blob(tmp_path / "clip.mp4", 50_000)
    assert fetch_local(str(src), tmp_path / "cache") == src  # a plain path as is, nothing copied
    assert fetch_local(src.as_uri(), tmp_path / "cache") == src
    assert not (tmp_path / "cache").exists()
    with pytest.raises(StorageError, match="no such file"):
        fetch_local(str(tmp_path / "missing.mp4"), tmp_path / "cache")
    store = s3(s3_endpoint, f"fetch-{unique}")
    uri = store.put_file(src, "clips/clip.mp4")
    local = fetch_local(uri, tmp_path / "cache", store)
    assert local.is_relative_to(tmp_path / "cache") and local.name == "clip.mp4"
    assert local.read_bytes() == src.read_bytes()
    assert fetch_local(uri, tmp_path / "cache", store) == local  # cached
    with pytest.raises(StorageError, match=f"s3://fetch-{unique}/clips/gone.mp4"):
        fetch_local(f"s3://fetch-{unique}/clips/gone.mp4", tmp_path / "cache", store)


def test_storage_from_settings(s3_endpoint: str, unique: str, tmp_path: Path) -> None:
    from dataclasses import dataclass

    from creatormesh.common.storage import storage_from

    @dataclass(frozen=True)
    class Settings:
        storage: str
        s3_endpoint_url: str = ""
        s3_region: str = "us-east-1"
        s3_access_key: str = ""
        s3_secret_key: str = ""

    local = storage_from(Settings(str(tmp_path / "media")))
    assert isinstance(local, LocalStorage)
    s3(s3_endpoint, f"from-{unique}")  # creates the bucket
    remote = storage_from(Settings(f"s3://from-{unique}/videos", s3_endpoint, "us-east-1", ACCESS_KEY, SECRET_KEY))
    assert isinstance(remote, S3Storage) and (remote.bucket, remote.prefix) == (f"from-{unique}", "videos")
    (tmp_path / "a.txt").write_text("hi")
    uri = remote.put_file(tmp_path / "a.txt", "a.txt")  # the endpoint and keys really were used
    assert remote.get_file(uri, tmp_path / "b.txt").read_text() == "hi"
