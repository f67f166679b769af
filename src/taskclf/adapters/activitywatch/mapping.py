"""Application normalization: raw ActivityWatch app names → stable app ids and categories.

ActivityWatch reports the foreground application as the OS sees it: ``Code.exe`` or
``chrome.exe`` on Windows (casing differs between machines), ``Google Chrome`` or ``iTerm2``
on macOS, a WM_CLASS such as ``google-chrome`` or ``org.gnome.Nautilus`` on Linux. The model
needs one id per application across all of them.

Normalization (:func:`normalize_app_name`): trim, lower-case, drop a trailing ``.exe``/``.app``/
``.desktop``, collapse whitespace. The normalized name is looked up in a table of common
applications; a hit gives a stable id (``chrome``, ``vscode``, ...) and its category. Names that
look like installers (``*setup*``, ``unins*``, ``*.tmp``) map to ``installer``. Anything else
gets the deterministic id ``unknown.<name>`` (the normalized name with characters outside
``[a-z0-9._-]`` replaced by ``_``, at most 64 characters) and the category ``other``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Final

#: Every category an app can map to.
APP_CATEGORIES: Final[tuple[str, ...]] = (
    "browser",
    "editor",
    "terminal",
    "email",
    "chat",
    "meeting",
    "docs",
    "design",
    "devtools",
    "media",
    "file_manager",
    "utilities",
    "system",
    "lockscreen",
    "game",
    "none",
    "other",
)

#: The app id/category of a minute without any window time.
NO_APP_ID: Final = "none"
NO_APP_CATEGORY: Final = "none"
UNKNOWN_APP_ID: Final = "unknown"
UNKNOWN_PREFIX: Final = "unknown."
_MAX_UNKNOWN_NAME: Final = 64


@dataclass(frozen=True)
class AppInfo:
    """A normalized application: stable id and category."""

    app_id: str
    category: str

    @property
    def is_browser(self) -> bool:
        return self.category == "browser"

    @property
    def is_editor(self) -> bool:
        return self.category == "editor"

    @property
    def is_terminal(self) -> bool:
        return self.category == "terminal"


# app id -> (category, normalized names seen on Windows / macOS / Linux)
_APPS: Final[dict[str, tuple[str, tuple[str, ...]]]] = {
    # browsers
    "chrome": (
        "browser",
        ("chrome", "google chrome", "google-chrome", "chromium", "chromium-browser"),
    ),
    "firefox": (
        "browser",
        ("firefox", "mozilla firefox", "firefox-esr", "firefox developer edition"),
    ),
    "edge": ("browser", ("msedge", "microsoft edge", "microsoft-edge")),
    "safari": ("browser", ("safari", "safari technology preview")),
    "brave": ("browser", ("brave", "brave browser", "brave-browser")),
    "opera": ("browser", ("opera", "opera gx")),
    "vivaldi": ("browser", ("vivaldi", "vivaldi-stable")),
    "arc": ("browser", ("arc",)),
    # editors and IDEs
    "vscode": ("editor", ("code", "visual studio code", "code - oss", "code-oss", "vscodium")),
    "cursor": ("editor", ("cursor",)),
    "visual_studio": ("editor", ("devenv", "visual studio")),
    "jetbrains_idea": ("editor", ("idea64", "idea", "intellij idea", "jetbrains-idea")),
    "jetbrains_pycharm": ("editor", ("pycharm64", "pycharm", "jetbrains-pycharm")),
    "jetbrains_webstorm": ("editor", ("webstorm64", "webstorm")),
    "jetbrains_clion": ("editor", ("clion64", "clion")),
    "jetbrains_rider": ("editor", ("rider64", "rider")),
    "jetbrains_goland": ("editor", ("goland64", "goland")),
    "android_studio": ("editor", ("studio64", "android studio", "jetbrains-studio")),
    "eclipse": ("editor", ("eclipse",)),
    "xcode": ("editor", ("xcode",)),
    "sublime_text": ("editor", ("sublime_text", "sublime text", "sublime_text_3")),
    "notepad_plus_plus": ("editor", ("notepad++",)),
    "vim": ("editor", ("vim", "gvim", "nvim", "neovim", "macvim")),
    "emacs": ("editor", ("emacs",)),
    "rstudio": ("editor", ("rstudio", "rsession-utf8", "rsession")),
    "matlab": ("editor", ("matlab",)),
    "spyder": ("editor", ("spyder",)),
    "jupyter": ("editor", ("jupyter-lab", "jupyterlab", "jupyter")),
    "zed": ("editor", ("zed",)),
    # terminals
    "windows_terminal": ("terminal", ("windowsterminal", "windows terminal", "openconsole")),
    "powershell": ("terminal", ("powershell", "pwsh", "windows powershell")),
    "cmd": ("terminal", ("cmd", "conhost", "command prompt")),
    "wsl": ("terminal", ("wsl", "wslhost", "bash", "ubuntu")),
    "macos_terminal": ("terminal", ("terminal",)),
    "iterm2": ("terminal", ("iterm2", "iterm")),
    "gnome_terminal": ("terminal", ("gnome-terminal", "gnome-terminal-server")),
    "konsole": ("terminal", ("konsole",)),
    "alacritty": ("terminal", ("alacritty",)),
    "kitty": ("terminal", ("kitty",)),
    "wezterm": ("terminal", ("wezterm", "wezterm-gui")),
    "xterm": ("terminal", ("xterm", "urxvt", "tilix", "terminator", "xfce4-terminal")),
    "warp": ("terminal", ("warp",)),
    # email
    "outlook": ("email", ("outlook", "olk", "microsoft outlook")),
    "thunderbird": ("email", ("thunderbird",)),
    "apple_mail": ("email", ("mail",)),
    "windows_mail": ("email", ("hxoutlook", "hxmail")),
    # chat
    "slack": ("chat", ("slack",)),
    "teams": ("chat", ("ms-teams", "teams", "microsoft teams", "microsoft teams (work or school)")),
    "discord": ("chat", ("discord",)),
    "messenger": ("chat", ("messenger", "messengerwebview2", "caprine")),
    "whatsapp": ("chat", ("whatsapp", "whatsapp.root")),
    "telegram": ("chat", ("telegram", "telegram desktop", "telegramdesktop")),
    "signal": ("chat", ("signal",)),
    "skype": ("chat", ("skype",)),
    "mattermost": ("chat", ("mattermost",)),
    "element": ("chat", ("element",)),
    "apple_messages": ("chat", ("messages",)),
    # meetings
    "zoom": ("meeting", ("zoom", "zoom.us", "zoom meetings")),
    "webex": ("meeting", ("webex", "ciscowebexstart", "webexmta")),
    "facetime": ("meeting", ("facetime",)),
    "gotomeeting": ("meeting", ("gotomeeting",)),
    "webcam": ("meeting", ("webcam", "windowscamera", "camera")),
    # documents
    "word": ("docs", ("winword", "microsoft word")),
    "excel": ("docs", ("excel", "microsoft excel")),
    "powerpoint": ("docs", ("powerpnt", "microsoft powerpoint")),
    "onenote": ("docs", ("onenote", "microsoft onenote")),
    "acrobat": ("docs", ("acrobat", "acrord32", "adobe acrobat", "adobe acrobat reader")),
    "libreoffice": ("docs", ("soffice", "libreoffice", "soffice.bin")),
    "notion": ("docs", ("notion",)),
    "obsidian": ("docs", ("obsidian",)),
    "evince": ("docs", ("evince", "okular", "zathura", "preview", "sumatrapdf")),
    "pages": ("docs", ("pages", "numbers", "keynote")),
    "notepad": ("docs", ("notepad", "textedit", "gedit", "kate", "mousepad")),
    # design
    "figma": ("design", ("figma", "figma_agent")),
    "photoshop": ("design", ("photoshop",)),
    "illustrator": ("design", ("illustrator",)),
    "gimp": ("design", ("gimp", "gimp-2.10")),
    "inkscape": ("design", ("inkscape",)),
    "blender": ("design", ("blender",)),
    "sketch": ("design", ("sketch",)),
    # developer tools
    "python": ("devtools", ("python", "python3", "pythonw", "py")),
    "java": ("devtools", ("java", "javaw")),
    "node": ("devtools", ("node",)),
    "docker": ("devtools", ("docker desktop", "docker")),
    "postman": ("devtools", ("postman",)),
    "github_desktop": ("devtools", ("githubdesktop", "github desktop")),
    "qemu": ("devtools", ("qemu-system-x86_64", "qemu-system-aarch64")),
    "remote_desktop": ("devtools", ("msrdc", "mstsc", "remote desktop connection")),
    # media
    "spotify": ("media", ("spotify",)),
    "vlc": ("media", ("vlc",)),
    "photos": ("media", ("photos", "microsoft.photos")),
    "music": ("media", ("music", "itunes", "rhythmbox")),
    "mpv": ("media", ("mpv", "quicktime player", "mediaplayer", "wmplayer")),
    # file managers
    "windows_explorer": ("file_manager", ("explorer",)),
    "finder": ("file_manager", ("finder",)),
    "nautilus": ("file_manager", ("nautilus", "org.gnome.nautilus", "dolphin", "thunar", "nemo")),
    # utilities
    "screenshot": ("utilities", ("sharex", "snippingtool", "screenclippinghost", "screenshot")),
    "onedrive": ("utilities", ("onedrive",)),
    "activitywatch": ("utilities", ("aw-qt", "aw-server", "activitywatch")),
    "whatpulse": ("utilities", ("whatpulse", "whatpulsemaintenancetool")),
    "rescuetime": ("utilities", ("rescuetime",)),
    "calculator": ("utilities", ("calculator", "calc", "gnome-calculator")),
    "vpn": ("utilities", ("vpnui", "openvpn", "wireguard")),
    "copilot": ("utilities", ("copilot",)),
    "phone_link": ("utilities", ("phoneexperiencehost", "yourphoneappproxy", "yourphone")),
    "open_with": ("utilities", ("openwith",)),
    "settings": ("utilities", ("systemsettings", "system settings", "system preferences")),
    # OS shell pieces
    "windows_shell": (
        "system",
        (
            "shellexperiencehost",
            "startmenuexperiencehost",
            "searchapp",
            "searchhost",
            "shellhost",
            "applicationframehost",
            "pickerhost",
            "widgetboard",
            "credentialuibroker",
            "uihost",
            "dwm",
            "rundll32",
            "gethelp",
            "mc-web-view",
            "searchui",
            "taskmgr",
        ),
    ),
    "macos_shell": ("system", ("dock", "spotlight", "systemuiserver", "loginwindow")),
    "linux_shell": ("system", ("gnome-shell", "plasmashell", "xfce4-panel")),
    # lock screen
    "lockscreen": (
        "lockscreen",
        ("lockapp", "screensaverengine", "gnome-screensaver", "xscreensaver"),
    ),
    # games and launchers
    "steam": ("game", ("steam", "steamwebhelper")),
    "ea_app": ("game", ("eadesktop", "origin", "originthinsetupinternal")),
    "stardew_valley": ("game", ("stardew valley",)),
    "the_sims_4": ("game", ("ts4_x64", "ts4")),
}

_LOOKUP: Final[dict[str, AppInfo]] = {
    name: AppInfo(app_id, category) for app_id, (category, names) in _APPS.items() for name in names
}
_SUFFIXES: Final = (".exe", ".app", ".desktop")
_INSTALLER = re.compile(
    r"(setup|install|unins|vcredist|updater|-windows|-amd64|-x86_64|-win64)|\.tmp$"
)
_UNSAFE = re.compile(r"[^a-z0-9._-]+")


def normalize_app_name(name: str) -> str:
    """Lower-case, trim, collapse spaces, drop one trailing ``.exe``/``.app``/``.desktop``."""
    norm = " ".join(str(name).split()).lower()
    for suffix in _SUFFIXES:
        if norm.endswith(suffix) and len(norm) > len(suffix):
            norm = norm[: -len(suffix)]
            break
    return norm


@lru_cache(maxsize=8192)
def map_app(name: str | None) -> AppInfo:
    """Map a raw application name to its :class:`AppInfo` (deterministic, case-insensitive)."""
    if name is None:
        return AppInfo(UNKNOWN_APP_ID, "other")
    norm = normalize_app_name(name)
    if not norm or norm == "unknown":
        return AppInfo(UNKNOWN_APP_ID, "other")
    hit = _LOOKUP.get(norm)
    if hit is not None:
        return hit
    if _INSTALLER.search(norm):
        return AppInfo("installer", "utilities")
    safe = _UNSAFE.sub("_", norm).strip("_")[:_MAX_UNKNOWN_NAME] or "app"
    return AppInfo(UNKNOWN_PREFIX + safe, "other")


def known_app_ids() -> tuple[str, ...]:
    """Every app id of the built-in table, sorted."""
    return tuple(sorted(_APPS))
