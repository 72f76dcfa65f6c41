from __future__ import annotations

import pytest

from creatormesh.allocation.settings import AllocationSettings
from creatormesh.common.settings import SettingsError, load


def test_settings_reject_inverted_bounds() -> None:
    with pytest.raises(SettingsError, match="min_share"):
        load(AllocationSettings, min_share=0.9, max_share=0.5)


def test_bad_weights_variable_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CREATORMESH_ALLOCATION_MAX_SHARE", "2")
    with pytest.raises(SettingsError, match="CREATORMESH_ALLOCATION_MAX_SHARE"):
        load(AllocationSettings)
