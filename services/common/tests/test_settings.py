from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import Field
from pydantic_settings import SettingsConfigDict

from creatormesh.common.settings import KitSettings, SettingsBase, SettingsError, as_env, load, markdown_table

ROOT = Path(__file__).resolve().parents[3]


def test_defaults_load() -> None:
    s = load(KitSettings)
    assert s.grpc_port == 50051 and s.log_format == "json"


def test_bad_variables_are_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CREATORMESH_GRPC_PORT", "not-a-port")
    monkeypatch.setenv("CREATORMESH_LOG_LEVEL", "LOUD")
    with pytest.raises(SettingsError) as info:
        load(KitSettings)
    text = str(info.value)
    assert "CREATORMESH_GRPC_PORT" in text and "'not-a-port'" in text
    assert "CREATORMESH_LOG_LEVEL" in text


def test_out_of_range_is_rejected(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CREATORMESH_GRPC_PORT", "70000")
    with pytest.raises(SettingsError, match="CREATORMESH_GRPC_PORT"):
        load(KitSettings)


def test_serve_fails_fast_with_the_variable_name() -> None:
    env = {**os.environ, "CREATORMESH_GRPC_PORT": "abc"}
    out = subprocess.run(
        [sys.executable, "-m", "creatormesh.common", "serve", "echo"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 2
    assert "CREATORMESH_GRPC_PORT" in out.stderr


class _Mixed(SettingsBase):
    model_config = SettingsConfigDict(env_prefix="CREATORMESH_TEST_MIXED_", extra="ignore", frozen=True)
    flag: bool = False
    ratio: float = 0.5
    count: int = 1
    names: list[str] = Field(default_factory=list)
    note: str = ""


def test_as_env_round_trips(monkeypatch: pytest.MonkeyPatch) -> None:
    original = load(_Mixed, flag=True, ratio=0.25, count=7, names=["a", "b c"], note='say "hi", 1')
    env = as_env(original)
    assert env["CREATORMESH_TEST_MIXED_FLAG"] == "true" and env["CREATORMESH_TEST_MIXED_NOTE"] == 'say "hi", 1'
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert load(_Mixed) == original
    kit = load(KitSettings, grpc_port=50999)
    for key, value in as_env(kit).items():
        monkeypatch.setenv(key, value)
    assert load(KitSettings) == kit


def test_secret_files_are_read(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "CREATORMESH_REDIS_URL").write_text("redis://secret-host:6380/1\n")
    (tmp_path / "CREATORMESH_GRPC_PORT").write_text("not-a-port")
    monkeypatch.setenv("CREATORMESH_SECRETS_DIR", str(tmp_path))
    monkeypatch.setenv("CREATORMESH_GRPC_PORT", "50052")  # a variable wins over a file
    s = load(KitSettings)
    assert s.redis_url == "redis://secret-host:6380/1" and s.grpc_port == 50052
    monkeypatch.delenv("CREATORMESH_GRPC_PORT")
    with pytest.raises(SettingsError, match="CREATORMESH_GRPC_PORT"):
        load(KitSettings)


def test_table_lists_every_field() -> None:
    table = markdown_table([KitSettings])
    for name in KitSettings.model_fields:
        assert f"`CREATORMESH_{name.upper()}`" in table


def test_readme_configuration_table_is_current() -> None:
    from creatormesh.common.cli import settings_classes

    readme = (ROOT / "README.md").read_text()
    match = re.search(r"<!-- config-table:start -->\n(.*?)\n<!-- config-table:end -->", readme, re.S)
    assert match, "README.md has no generated configuration table"
    assert match.group(1).strip() == markdown_table(settings_classes()).strip(), "run `make docs`"
