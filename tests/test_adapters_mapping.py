from __future__ import annotations

import json
import re
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import REAL_DATA
from taskclf.adapters.activitywatch.mapping import (
    APP_CATEGORIES,
    UNKNOWN_PREFIX,
    map_app,
    normalize_app_name,
)

SAME_APP = {
    "chrome": ["Chrome.exe", "chrome.exe", "CHROME.EXE", "Google Chrome", "google-chrome"],
    "vscode": ["Code.exe", "code", "Visual Studio Code", "code-oss"],
    "firefox": ["firefox.exe", "Firefox", "firefox-esr"],
    "windows_terminal": ["WindowsTerminal.exe", "windowsterminal"],
    "nautilus": ["org.gnome.Nautilus", "Nautilus"],
    "iterm2": ["iTerm2"],
    "lockscreen": ["LockApp.exe"],
}


@pytest.mark.parametrize(("app_id", "names"), sorted(SAME_APP.items()))
def test_os_variants_map_to_one_id(app_id, names):
    assert {map_app(n).app_id for n in names} == {app_id}


def test_categories_and_flags():
    assert map_app("Chrome.exe").is_browser
    assert map_app("idea64.exe").is_editor
    assert map_app("powershell.exe").is_terminal
    assert map_app("olk.exe").category == "email"
    assert map_app("zoom.us").category == "meeting"
    assert map_app("Messenger.exe").category == "chat"
    assert map_app("WINWORD.EXE").category == "docs"
    assert map_app("explorer.exe").category == "file_manager"
    assert map_app("Spotify.exe").category == "media"
    assert map_app("LockApp.exe").category == "lockscreen"


def test_unknown_apps_get_deterministic_ids():
    info = map_app("Stardew Valley Deluxe.exe")
    assert info.app_id == "unknown.stardew_valley_deluxe"
    assert info.category == "other"
    assert map_app("STARDEW VALLEY DELUXE.exe") == info
    assert map_app("unknown").app_id == "unknown"
    assert map_app("").app_id == "unknown"
    assert map_app(None).app_id == "unknown"
    assert map_app("CodeSetup-stable-618725e6.tmp").app_id == "installer"


@settings(max_examples=80, deadline=None)
@given(st.text(min_size=0, max_size=120))
def test_any_name_maps_to_a_safe_id(name):
    info = map_app(name)
    assert info.category in APP_CATEGORIES
    assert re.fullmatch(r"[a-z0-9._-]{1,80}", info.app_id)
    assert map_app(name) == info
    # case and a trailing .exe never change the id
    assert map_app(name.upper()).app_id == map_app(name.lower()).app_id or not name.isascii()
    # (only one .exe is stripped: "x.exe.exe" is not "x")
    if normalize_app_name(name) and not name.strip().lower().endswith(".exe"):
        assert map_app(name + ".exe").app_id == info.app_id


def _real_app_seconds() -> Counter[str]:
    total: Counter[str] = Counter()
    for f in sorted(REAL_DATA.glob("*export.json")):
        for b in json.loads(f.read_text())["buckets"].values():
            if b["type"] == "currentwindow":
                for e in b["events"]:
                    total[e["data"]["app"]] += e["duration"]
    return total


def test_real_export_apps_are_covered():
    seconds = _real_app_seconds()
    assert seconds, "real exports not found"
    uncovered = sorted(
        app
        for app, s in seconds.items()
        if s >= 60 and app != "unknown" and map_app(app).app_id.startswith(UNKNOWN_PREFIX)
    )
    assert uncovered == []
