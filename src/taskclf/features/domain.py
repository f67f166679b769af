"""Browser-tab URLs → a coarse, privacy-safe domain category.

Only the category (and at most a keyed hash of the host) leaves memory; the URL itself is
dropped at ingest. Hosts are matched from the most specific suffix to the least
(``mail.google.com`` before ``google.com``); a few hosts also look at the first path segment
(``www.google.com/search``). Anything unmatched is ``other``.
"""

from __future__ import annotations

import hmac
from functools import lru_cache
from hashlib import sha256
from typing import Final
from urllib.parse import urlsplit

#: Categories of a minute whose dominant app is not a browser / is a browser without tab data.
NON_BROWSER: Final = "non_browser"
UNKNOWN_DOMAIN: Final = "unknown"

DOMAIN_CATEGORIES: Final[tuple[str, ...]] = (
    "ai_assistant",
    "browser_internal",
    "cloud_console",
    "code_hosting",
    "docs",
    "email",
    "chat",
    "file",
    "learning",
    "localhost",
    "meeting",
    "music",
    "news",
    "qa",
    "reference",
    "search",
    "shopping",
    "social",
    "video",
    "other",
    NON_BROWSER,
    UNKNOWN_DOMAIN,
)

_HOSTS: Final[dict[str, str]] = {
    # search
    "google.com": "search",
    "bing.com": "search",
    "duckduckgo.com": "search",
    "search.brave.com": "search",
    "ecosia.org": "search",
    "yandex.ru": "search",
    "baidu.com": "search",
    # google workspace pieces
    "mail.google.com": "email",
    "inbox.google.com": "email",
    "meet.google.com": "meeting",
    "docs.google.com": "docs",
    "drive.google.com": "docs",
    "sheets.google.com": "docs",
    "slides.google.com": "docs",
    "calendar.google.com": "docs",
    "keep.google.com": "docs",
    "scholar.google.com": "reference",
    "translate.google.com": "reference",
    "maps.google.com": "reference",
    "colab.research.google.com": "code_hosting",
    "console.cloud.google.com": "cloud_console",
    "chat.google.com": "chat",
    # email
    "outlook.live.com": "email",
    "outlook.office.com": "email",
    "outlook.office365.com": "email",
    "mail.yahoo.com": "email",
    "proton.me": "email",
    "protonmail.com": "email",
    "gmail.com": "email",
    # chat
    "slack.com": "chat",
    "app.slack.com": "chat",
    "discord.com": "chat",
    "web.whatsapp.com": "chat",
    "messenger.com": "chat",
    "teams.microsoft.com": "chat",
    "teams.live.com": "chat",
    "web.telegram.org": "chat",
    # meetings
    "zoom.us": "meeting",
    "webex.com": "meeting",
    "whereby.com": "meeting",
    # code hosting and developer services
    "github.com": "code_hosting",
    "gist.github.com": "code_hosting",
    "gitlab.com": "code_hosting",
    "bitbucket.org": "code_hosting",
    "huggingface.co": "code_hosting",
    "kaggle.com": "code_hosting",
    "codeberg.org": "code_hosting",
    "replit.com": "code_hosting",
    "vercel.com": "cloud_console",
    "netlify.com": "cloud_console",
    "portal.azure.com": "cloud_console",
    "console.aws.amazon.com": "cloud_console",
    "heroku.com": "cloud_console",
    # questions and answers
    "stackoverflow.com": "qa",
    "stackexchange.com": "qa",
    "superuser.com": "qa",
    "serverfault.com": "qa",
    "askubuntu.com": "qa",
    "quora.com": "qa",
    # documentation / productivity
    "docs.python.org": "docs",
    "readthedocs.io": "docs",
    "readthedocs.org": "docs",
    "developer.mozilla.org": "docs",
    "learn.microsoft.com": "docs",
    "docs.microsoft.com": "docs",
    "notion.so": "docs",
    "notion.site": "docs",
    "atlassian.net": "docs",
    "confluence.com": "docs",
    "overleaf.com": "docs",
    "office.com": "docs",
    "sharepoint.com": "docs",
    "onedrive.live.com": "docs",
    "dropbox.com": "docs",
    "figma.com": "docs",
    "trello.com": "docs",
    "miro.com": "docs",
    "pypi.org": "docs",
    "cran.r-project.org": "docs",
    "docs.rs": "docs",
    # reference
    "wikipedia.org": "reference",
    "wiktionary.org": "reference",
    "arxiv.org": "reference",
    "scholar.archive.org": "reference",
    "researchgate.net": "reference",
    "sciencedirect.com": "reference",
    "springer.com": "reference",
    "ieee.org": "reference",
    "acm.org": "reference",
    "deepl.com": "reference",
    # learning
    "coursera.org": "learning",
    "udemy.com": "learning",
    "edx.org": "learning",
    "khanacademy.org": "learning",
    "usos.pw.edu.pl": "learning",
    "moodle.org": "learning",
    "leetcode.com": "learning",
    "w3schools.com": "learning",
    "geeksforgeeks.org": "learning",
    # ai assistants
    "chatgpt.com": "ai_assistant",
    "chat.openai.com": "ai_assistant",
    "claude.ai": "ai_assistant",
    "gemini.google.com": "ai_assistant",
    "copilot.microsoft.com": "ai_assistant",
    "perplexity.ai": "ai_assistant",
    # video / music
    "youtube.com": "video",
    "youtu.be": "video",
    "netflix.com": "video",
    "twitch.tv": "video",
    "vimeo.com": "video",
    "primevideo.com": "video",
    "disneyplus.com": "video",
    "open.spotify.com": "music",
    "music.youtube.com": "music",
    "soundcloud.com": "music",
    # social
    "facebook.com": "social",
    "instagram.com": "social",
    "twitter.com": "social",
    "x.com": "social",
    "reddit.com": "social",
    "linkedin.com": "social",
    "tiktok.com": "social",
    "pinterest.com": "social",
    "mastodon.social": "social",
    "news.ycombinator.com": "news",
    # news
    "bbc.com": "news",
    "bbc.co.uk": "news",
    "cnn.com": "news",
    "nytimes.com": "news",
    "theguardian.com": "news",
    "reuters.com": "news",
    "onet.pl": "news",
    "wp.pl": "news",
    # shopping
    "amazon.com": "shopping",
    "ebay.com": "shopping",
    "allegro.pl": "shopping",
    "aliexpress.com": "shopping",
    "etsy.com": "shopping",
}
_LOCAL_HOSTS: Final = frozenset({"localhost", "127.0.0.1", "0.0.0.0", "::1", "[::1]"})
_INTERNAL_SCHEMES: Final = frozenset(
    {
        "chrome",
        "edge",
        "about",
        "moz-extension",
        "chrome-extension",
        "brave",
        "opera",
        "view-source",
    }
)


def url_host(url: str) -> str | None:
    """Lower-cased host of ``url`` without ``www.`` and port, or None when it has none."""
    try:
        parts = urlsplit(url.strip())
        host = parts.hostname
    except ValueError:
        return None
    if not host:
        return None
    host = host.lower().rstrip(".")
    return host[4:] if host.startswith("www.") else host


@lru_cache(maxsize=1 << 14)
def _host_category(host: str) -> str:
    if host in _LOCAL_HOSTS or host.endswith(".localhost"):
        return "localhost"
    labels = host.split(".")
    for i in range(len(labels)):
        hit = _HOSTS.get(".".join(labels[i:]))
        if hit is not None:
            return hit
    return "other"


def domain_category(url: str) -> str:
    """The domain category of a browser-tab URL (see :data:`DOMAIN_CATEGORIES`)."""
    if not isinstance(url, str) or not url.strip():
        return UNKNOWN_DOMAIN
    text = url.strip()
    scheme = text.split(":", 1)[0].lower() if ":" in text else ""
    if scheme in _INTERNAL_SCHEMES:
        return "browser_internal"
    if scheme == "file":
        return "file"
    host = url_host(text)
    if host is None:
        return UNKNOWN_DOMAIN
    category = _host_category(host)
    if category == "search" and host == "google.com":
        path = urlsplit(text).path
        if not (path.startswith("/search") or path in ("", "/", "/webhp")):
            return "other"
    return category


def host_hash(secret: bytes, host: str | None) -> str | None:
    """Keyed hash (HMAC-SHA-256, first 12 hex) of a host, or None."""
    if not host:
        return None
    return hmac.new(secret, b"host:" + host.encode("utf-8", "surrogatepass"), sha256).hexdigest()[
        :12
    ]
