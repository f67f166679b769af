"""Made-up but realistic vocabularies: app names per OS, projects, files, titles, URLs.

Everything here is invented (no real people, projects or addresses). The pools are small on
purpose: a user draws a few projects and colleagues once, then titles repeat within blocks and
across days, as real window titles do.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final, TypeVar

import numpy as np

T = TypeVar("T")

#: App names as aw-watcher-window reports them, per operating system and app kind.
APP_NAMES: Final[dict[str, dict[str, str]]] = {
    "windows": {
        "chrome": "chrome.exe",
        "firefox": "firefox.exe",
        "vscode": "Code.exe",
        "jetbrains": "pycharm64.exe",
        "terminal": "WindowsTerminal.exe",
        "slack": "Slack.exe",
        "teams": "ms-teams.exe",
        "zoom": "Zoom.exe",
        "outlook": "OUTLOOK.EXE",
        "thunderbird": "thunderbird.exe",
        "word": "WINWORD.EXE",
        "notion": "Notion.exe",
        "pdf": "Acrobat.exe",
        "spotify": "Spotify.exe",
        "lock": "LockApp.exe",
        "files": "explorer.exe",
    },
    "macos": {
        "chrome": "Google Chrome",
        "firefox": "Firefox",
        "vscode": "Code",
        "jetbrains": "PyCharm",
        "terminal": "iTerm2",
        "slack": "Slack",
        "teams": "Microsoft Teams",
        "zoom": "zoom.us",
        "outlook": "Microsoft Outlook",
        "thunderbird": "Thunderbird",
        "word": "Microsoft Word",
        "notion": "Notion",
        "pdf": "Preview",
        "spotify": "Spotify",
        "lock": "loginwindow",
        "files": "Finder",
    },
    "linux": {
        "chrome": "Google-chrome",
        "firefox": "firefox",
        "vscode": "Code",
        "jetbrains": "jetbrains-pycharm",
        "terminal": "gnome-terminal-server",
        "slack": "Slack",
        "teams": "teams-for-linux",
        "zoom": "zoom",
        "outlook": "thunderbird",
        "thunderbird": "thunderbird",
        "word": "libreoffice-writer",
        "notion": "notion-app",
        "pdf": "evince",
        "spotify": "Spotify",
        "lock": "unknown",
        "files": "org.gnome.Nautilus",
    },
}

LOCK_TITLES: Final[dict[str, str]] = {
    "windows": "Windows Default Lock Screen",
    "macos": "",
    "linux": "",
}
BROWSER_SUFFIX: Final[dict[str, str]] = {
    "chrome": " - Google Chrome",
    "firefox": " — Mozilla Firefox",
}

PROJECTS: Final = (
    "atlas",
    "billing-service",
    "orion-ui",
    "data-pipeline",
    "kestrel",
    "ledger-api",
    "nebula-cli",
    "pulse-dashboard",
    "harbor",
    "quartz-etl",
    "sentinel",
    "tundra-auth",
)
ORGS: Final = ("acme", "northwind", "globex", "initech", "umbrella-labs")
WORKSPACES: Final = ("Acme", "Northwind", "Globex", "Initech", "Umbrella Labs")
LANGUAGES: Final = ("python", "typescript", "go", "rust")
MODULES: Final = (
    "scheduler",
    "api",
    "models",
    "utils",
    "config",
    "client",
    "worker",
    "handlers",
    "auth",
    "storage",
    "parser",
    "cache",
    "routes",
    "metrics",
    "queue",
    "invoice",
    "session",
    "export",
)
FIRST_NAMES: Final = (
    "Ana",
    "Ben",
    "Chen",
    "Dara",
    "Eli",
    "Farah",
    "Goran",
    "Hana",
    "Ivo",
    "Jun",
    "Kasia",
    "Lena",
    "Mateo",
    "Nia",
    "Omar",
    "Priya",
    "Rui",
    "Sven",
    "Tomas",
    "Yuki",
)
LAST_INITIALS: Final = "BCDFGHKLMNPRSTVW"
CHANNELS: Final = (
    "general",
    "team-backend",
    "incidents",
    "deploys",
    "random",
    "design",
    "releases",
    "help-infra",
    "standup",
    "data-eng",
)
MEETINGS: Final = (
    "Sprint planning",
    "Design review",
    "Retro",
    "All hands",
    "Customer call",
    "Roadmap sync",
    "Architecture review",
    "Hiring debrief",
    "Incident review",
    "Team sync",
)
ERRORS: Final = (
    ("TypeError", "'NoneType' object is not subscriptable"),
    ("KeyError", "missing column in groupby result"),
    ("ConnectionResetError", "peer closed connection during handshake"),
    ("TimeoutError", "worker did not acknowledge task in 30s"),
    ("ValueError", "invalid literal for int() with base 10"),
    ("IntegrityError", "duplicate key value violates unique constraint"),
    ("RecursionError", "maximum recursion depth exceeded"),
    ("TypeError", "Cannot read properties of undefined (reading 'map')"),
    ("panic", "runtime error: index out of range [3] with length 3"),
    ("AssertionError", "expected 200 got 502 from upstream"),
    ("MemoryError", "unable to allocate array for batch"),
    ("DeadlockError", "lock wait timeout exceeded; try restarting transaction"),
)
LIBS: Final = (
    "numpy",
    "pandas",
    "fastapi",
    "sqlalchemy",
    "pytest",
    "requests",
    "react",
    "kubernetes",
    "tokio",
    "pydantic",
    "celery",
    "redis",
)
PY_DOCS: Final = (
    ("asyncio", "Asynchronous I/O"),
    ("itertools", "Functions creating iterators for efficient looping"),
    ("dataclasses", "Data Classes"),
    ("functools", "Higher-order functions and operations on callable objects"),
    ("typing", "Support for type hints"),
    ("collections", "Container datatypes"),
    ("concurrent.futures", "Launching parallel tasks"),
    ("sqlite3", "DB-API 2.0 interface for SQLite databases"),
    ("logging", "Logging facility for Python"),
    ("pathlib", "Object-oriented filesystem paths"),
)
PAPER_ADJ: Final = (
    "Efficient",
    "Scalable",
    "Robust",
    "Sparse",
    "Self-Supervised",
    "Probabilistic",
    "Incremental",
    "Contrastive",
    "Federated",
    "Calibrated",
)
PAPER_NOUN: Final = (
    "Attention",
    "Transformers",
    "Gradient Boosting",
    "Graph Networks",
    "Retrieval",
    "Time-Series Models",
    "Embeddings",
    "Active Learning",
    "Query Planning",
    "Consensus",
)
PAPER_TASK: Final = (
    "Long Sequences",
    "Activity Recognition",
    "Tabular Data",
    "Log Anomaly Detection",
    "Code Search",
    "Distributed Databases",
    "Streaming Joins",
    "Few-Shot Classification",
    "Program Repair",
    "Energy Forecasting",
)
WIKI_TOPICS: Final = (
    "Consistent hashing",
    "Bloom filter",
    "Raft (algorithm)",
    "Isotonic regression",
    "Two-phase commit protocol",
    "Write-ahead logging",
    "Cache replacement policies",
    "B-tree",
    "Conflict-free replicated data type",
    "Exponential backoff",
)
DOC_TEMPLATES: Final = (
    "Design doc: {module} redesign",
    "RFC {n}: {project} {module} API",
    "{Project} onboarding guide",
    "Postmortem: {project} outage",
    "Q{q} planning notes",
    "Release notes {project} v{major}.{minor}",
    "Weekly report {team}",
    "Migration plan: {module} to v{major}",
)
MD_FILES: Final = (
    "README.md",
    "CHANGELOG.md",
    "design.md",
    "architecture.md",
    "CONTRIBUTING.md",
    "runbook.md",
)
PR_VERBS: Final = ("Fix", "Add", "Refactor", "Remove", "Update", "Speed up", "Handle")
PR_OBJECTS: Final = (
    "retry logic in {module}",
    "pagination for {module} endpoint",
    "flaky test in test_{module}",
    "null check in {module}",
    "{module} caching",
    "logging around {module}",
    "timeouts in {module} client",
    "{module} config validation",
)
VIDEOS: Final = (
    "Lo-fi beats to relax to",
    "How espresso machines work",
    "10 minute stretch break",
    "Top 10 goals of the week",
    "Cooking pasta the right way",
    "Cat compilation 2026",
)
TRACKS: Final = (
    "Nordlys - Slow Harbour",
    "The Paper Kites - Morning Static",
    "Kalia - Blue Hours",
    "Motel Radio - Long Drive",
    "Lumen Park - Quiet Rooms",
)
NEWS: Final = (
    ("Hacker News", "https://news.ycombinator.com/"),
    ("r/programming", "https://www.reddit.com/r/programming/"),
    ("Weather forecast - 10 day outlook", "https://weather.example.com/forecast"),
    ("Home / X", "https://x.com/home"),
    ("Tech news - The Daily Byte", "https://dailybyte.example.com/tech"),
)
BUILD_CMDS: Final[dict[str, tuple[str, ...]]] = {
    "python": (
        "pytest tests/test_{module}.py",
        "python -m {pkg}",
        "pip install -e .",
        "make lint",
        "ruff check src",
        "mypy src",
    ),
    "typescript": (
        "npm run build",
        "npm test -- {module}",
        "npx tsc --noEmit",
        "npm run dev",
        "npx eslint src",
    ),
    "go": ("go build ./...", "go test ./{module}/...", "make build", "go vet ./..."),
    "rust": ("cargo build", "cargo test {module}", "cargo clippy", "cargo run --release"),
}
COMMON_CMDS: Final = ("git status", "git commit", "docker compose up", "make", "git pull --rebase")
DEBUG_CMDS: Final[dict[str, tuple[str, ...]]] = {
    "python": (
        "python -m pdb -m {pkg}",
        "pytest -x --pdb tests/test_{module}.py",
        "Traceback (most recent call last)",
    ),
    "typescript": ("node --inspect dist/{module}.js", "npm test -- --runInBand {module}"),
    "go": ("dlv debug ./cmd/{project}", "go test -run Test{Module} -v ./{module}"),
    "rust": ("rust-gdb target/debug/{pkg}", "RUST_BACKTRACE=1 cargo test {module}"),
}
COMMON_DEBUG_CMDS: Final = (
    "tail -f logs/{module}.log",
    "kubectl logs {project}-7d9f8-x2k",
    "docker logs -f {project}",
    "curl -v localhost:8080/{module}",
)
GIT_REVIEW_CMDS: Final = (
    "git diff main...{branch}",
    "gh pr checkout {n}",
    "git log -p {branch}",
    "git fetch origin {branch}",
)
GENERIC_TITLES: Final = ("New Tab", "Untitled", "Document1", "Home", "Search", "Loading…")
LANG_EXT: Final = {"python": "py", "typescript": "ts", "go": "go", "rust": "rs"}


def pick(rng: np.random.Generator, items: Sequence[T]) -> T:
    """One element of ``items``, uniformly."""
    return items[int(rng.integers(len(items)))]


def sample(rng: np.random.Generator, items: Sequence[T], k: int) -> tuple[T, ...]:
    """``k`` distinct elements of ``items`` (order of the draw)."""
    idx = rng.choice(len(items), size=min(k, len(items)), replace=False)
    return tuple(items[int(i)] for i in idx)


def source_file(module: str, language: str, *, test: bool = False) -> str:
    """A source file name for ``module`` in ``language`` (optionally its test file)."""
    ext = LANG_EXT[language]
    if not test:
        return f"{module}.{ext}"
    return {
        "python": f"test_{module}.py",
        "typescript": f"{module}.test.ts",
        "go": f"{module}_test.go",
        "rust": f"{module}_tests.rs",
    }[language]


def slug(text: str) -> str:
    """URL slug of ``text``."""
    out = "".join(ch.lower() if ch.isalnum() else "-" for ch in text)
    while "--" in out:
        out = out.replace("--", "-")
    return out.strip("-")
