"""What a user does inside a block: weighted activities per label, built from their habits.

An :class:`Activity` makes one foreground window (app, title, optional browser tab) from the
block's :class:`BlockContext` (the project, PR, document, paper or meeting the block is about),
so titles repeat inside a block. Each window carries an input *mode* that drives the simulated
keyboard/mouse counts (typing in editors and documents, scrolling while reading, almost nothing
in meetings).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, NamedTuple

import numpy as np

from taskclf.synthetic import _vocab as V
from taskclf.synthetic._profiles import WORK_LABELS, UserProfile

#: Input modes: (active run mean s, pause run mean s, presses/s, clicks/s, mouse px/s, scroll/s).
MODES: Final[dict[str, tuple[float, float, float, float, float, float]]] = {
    "code": (20.0, 12.0, 3.0, 0.15, 60.0, 0.3),
    "terminal": (12.0, 15.0, 3.5, 0.05, 10.0, 0.2),
    "debug": (12.0, 20.0, 1.0, 0.6, 120.0, 0.6),
    "review": (15.0, 20.0, 0.6, 0.4, 150.0, 3.0),
    "prose": (25.0, 10.0, 4.5, 0.1, 30.0, 0.3),
    "read": (12.0, 35.0, 0.1, 0.15, 80.0, 4.0),
    "chat": (10.0, 18.0, 3.0, 0.5, 120.0, 0.8),
    "watch": (4.0, 100.0, 0.2, 0.3, 80.0, 0.1),
    "browse": (10.0, 15.0, 0.5, 0.6, 200.0, 2.0),
    "idle": (0.0, 1e9, 0.0, 0.0, 0.0, 0.0),
}
MODE_NAMES: Final = tuple(MODES)
MODE_INDEX: Final = {name: i for i, name in enumerate(MODE_NAMES)}


class Window(NamedTuple):
    """One foreground window; ``url``/``page_title`` only for the watched browser."""

    app: str
    title: str
    mode: str
    url: str | None = None
    page_title: str | None = None
    audible: bool = False


@dataclass(frozen=True)
class BlockContext:
    """What one block is about; drawn once per block so titles repeat within it."""

    project: str
    language: str
    files: tuple[str, ...]
    ticket: str
    pr_number: int
    pr_title: str
    pr_author: str
    branch: str
    doc: str
    paper: str
    paper_id: str
    channel: str
    person: str
    error: tuple[str, str]
    lib: str
    meeting: str


Builder = Callable[[np.random.Generator, BlockContext], Window]


@dataclass(frozen=True)
class Activity:
    """A weighted way of spending a dwell, with a typical dwell length in seconds."""

    weight: float
    median_seconds: float
    build: Builder


def make_context(
    profile: UserProfile, rng: np.random.Generator, meeting: str | None = None
) -> BlockContext:
    """Draw what a block is about for ``profile``."""
    p = int(rng.integers(len(profile.projects)))
    project, language = profile.projects[p], profile.languages[p]
    modules = V.sample(rng, V.MODULES, 4)
    files = (
        *(V.source_file(m, language) for m in modules[:3]),
        V.source_file(modules[0], language, test=True),
    )
    module = modules[0]
    n = int(rng.integers(100, 4000))
    doc = V.pick(rng, V.DOC_TEMPLATES).format(
        module=module,
        project=project,
        Project=project.replace("-", " ").title(),
        n=int(rng.integers(10, 99)),
        q=int(rng.integers(1, 5)),
        major=int(rng.integers(1, 6)),
        minor=int(rng.integers(0, 20)),
        team=V.pick(rng, V.CHANNELS),
    )
    paper = (
        f"{V.pick(rng, V.PAPER_ADJ)} {V.pick(rng, V.PAPER_NOUN)} for {V.pick(rng, V.PAPER_TASK)}"
    )
    return BlockContext(
        project=project,
        language=language,
        files=files,
        ticket=f"{project[:3].upper()}-{int(rng.integers(100, 2000))}",
        pr_number=n,
        pr_title=f"{V.pick(rng, V.PR_VERBS)} {V.pick(rng, V.PR_OBJECTS).format(module=module)}",
        pr_author=V.pick(rng, profile.colleagues),
        branch=f"{V.pick(rng, ('fix', 'feat', 'chore'))}/{module}-{n}",
        doc=doc,
        paper=paper,
        paper_id=f"{int(rng.integers(2001, 2512))}.{int(rng.integers(10000, 30000))}",
        channel=V.pick(rng, V.CHANNELS),
        person=V.pick(rng, profile.colleagues),
        error=V.pick(rng, V.ERRORS),
        lib=V.pick(rng, V.LIBS),
        meeting=meeting or V.pick(rng, V.MEETINGS),
    )


class _Apps:
    """A user's app names and title formats, from their archetype and OS."""

    def __init__(self, profile: UserProfile) -> None:
        a = profile.archetype
        self.a = a
        self.profile = profile
        self.names = V.APP_NAMES[a.os]
        self.browser = self.names[a.browser]
        self.suffix = V.BROWSER_SUFFIX[a.browser]

    def web(self, page: str, url: str, mode: str, *, audible: bool = False) -> Window:
        return Window(self.browser, page + self.suffix, mode, url, page, audible)

    def terminal(self, title: str, mode: str = "terminal") -> Window:
        return Window(self.names["terminal"], title, mode)

    def editor(self, c: BlockContext, file: str, mode: str = "code") -> Window:
        kind = self.a.editor
        if kind == "vscode":
            return Window(self.names["vscode"], f"{file} - {c.project} - Visual Studio Code", mode)
        if kind == "jetbrains":
            return Window(self.names["jetbrains"], f"{c.project} – {file}", mode)
        return self.terminal(f"{file} (~/src/{c.project}) - VIM", mode)

    def cmd(self, c: BlockContext, template: str) -> str:
        module = c.files[0].split(".")[0]
        return template.format(
            module=module,
            Module=module.title(),
            pkg=c.project.replace("-", "_"),
            project=c.project,
            branch=c.branch,
            n=c.pr_number,
        )

    def term_cmd(self, c: BlockContext, template: str, mode: str = "terminal") -> Window:
        command = self.cmd(c, template)
        if self.a.os == "linux":
            return self.terminal(
                f"dev@{self.profile.hostname}: ~/src/{c.project} — {command}", mode
            )
        if self.a.os == "macos":
            return self.terminal(f"{command} — {c.project}", mode)
        return self.terminal(command, mode)


def _pick_file(rng: np.random.Generator, c: BlockContext) -> str:
    # The first file is the one the block is about; it dominates.
    weights = np.array([0.5, 0.2, 0.15, 0.15])[: len(c.files)]
    return c.files[int(rng.choice(len(c.files), p=weights / weights.sum()))]


# Shared window makers: several labels use the same windows (an editor on the same files in
# Build, Debug and Review; library docs in Build, Debug and ReadResearch; the PR page in Review,
# Build and Communicate), which is what makes minutes genuinely ambiguous.


def _editor(ap: _Apps, r: np.random.Generator, c: BlockContext, mode: str) -> Window:
    return ap.editor(c, _pick_file(r, c), mode)


def _build_cmd(ap: _Apps, r: np.random.Generator, c: BlockContext) -> Window:
    return ap.term_cmd(c, V.pick(r, V.BUILD_CMDS[c.language] + V.COMMON_CMDS))


def _lib_docs(ap: _Apps, r: np.random.Generator, c: BlockContext) -> Window:
    page = V.pick(r, ("documentation", "API reference", "User guide"))
    return ap.web(f"{c.lib} {page}", f"https://{c.lib}.readthedocs.io/en/stable/", "read")


def _py_docs(ap: _Apps, r: np.random.Generator, c: BlockContext) -> Window:
    mod, desc = V.PY_DOCS[c.pr_number % len(V.PY_DOCS)]
    page = f"{mod} — {desc} — Python 3.12 documentation"
    return ap.web(page, f"https://docs.python.org/3/library/{mod}.html", "read")


def _pr_page(ap: _Apps, r: np.random.Generator, c: BlockContext, mode: str) -> Window:
    org = ap.profile.org
    if ap.a.review_site == "gitlab":
        page = f"{c.pr_title} (!{c.pr_number}) · Merge requests · {org} / {c.project} · GitLab"
        url = f"https://gitlab.com/{org}/{c.project}/-/merge_requests/{c.pr_number}/diffs"
        return ap.web(page, url, mode)
    page = f"{c.pr_title} by {c.pr_author} · Pull Request #{c.pr_number} · {org}/{c.project}"
    tail = V.pick(r, ("files", "files", "commits", ""))
    url = f"https://github.com/{org}/{c.project}/pull/{c.pr_number}/{tail}".rstrip("/")
    return ap.web(page, url, mode)


def _ci(ap: _Apps, r: np.random.Generator, c: BlockContext) -> Window:
    run = c.pr_number * 7 + 3
    org = ap.profile.org
    url = f"https://github.com/{org}/{c.project}/actions/runs/{run}"
    return ap.web(f"CI · {org}/{c.project}", url, "browse")


def _stackoverflow(ap: _Apps, r: np.random.Generator, c: BlockContext) -> Window:
    kind, msg = c.error
    qid = 40_000_000 + c.pr_number * 13
    page = f"{c.language} - {kind}: {msg} - Stack Overflow"
    url = f"https://stackoverflow.com/questions/{qid}/{V.slug(msg)[:60]}"
    return ap.web(page, url, "read")


def _wiki(ap: _Apps, r: np.random.Generator, c: BlockContext) -> Window:
    topic = V.WIKI_TOPICS[(c.pr_number + int(r.integers(2))) % len(V.WIKI_TOPICS)]
    url = f"https://en.wikipedia.org/wiki/{topic.replace(' ', '_')}"
    return ap.web(f"{topic} - Wikipedia", url, "read")


def _main_doc(ap: _Apps, r: np.random.Generator, c: BlockContext, mode: str) -> Window:
    kind = ap.a.docs
    if kind == "gdocs":
        url = f"https://docs.google.com/document/d/{V.slug(c.doc)[:12]}/edit"
        return ap.web(f"{c.doc} - Google Docs", url, mode)
    if kind == "confluence":
        url = f"https://{ap.profile.org}.atlassian.net/wiki/spaces/ENG/pages/{c.pr_number * 11}"
        return ap.web(f"{c.doc} - Engineering - Confluence", url, mode)
    if kind == "word":
        return Window(ap.names["word"], f"{c.doc}.docx - Word", mode)
    if kind == "notion":
        return Window(ap.names["notion"], c.doc, mode)
    return ap.editor(c, V.MD_FILES[c.pr_number % len(V.MD_FILES)], mode)


def _chat_window(ap: _Apps, r: np.random.Generator, c: BlockContext) -> Window:
    p = ap.profile
    if ap.a.chat == "teams":
        title = V.pick(
            r, (f"Chat | {c.person} | Microsoft Teams", f"{c.channel} | Eng | Microsoft Teams")
        )
        return Window(ap.names["teams"], title, "chat")
    title = V.pick(
        r, (f"#{c.channel} - {p.workspace} - Slack", f"{c.person} (DM) - {p.workspace} - Slack")
    )
    return Window(ap.names["slack"], title, "chat")


def _mail_window(ap: _Apps, r: np.random.Generator, c: BlockContext) -> Window:
    p = ap.profile
    if ap.a.mail == "gmail":
        inbox = f"Inbox ({c.pr_number % 40}) - {p.email} - Gmail"
        page = V.pick(r, (inbox, f"Re: {c.doc} - {p.email} - Gmail"))
        return ap.web(page, "https://mail.google.com/mail/u/0/#inbox", "chat")
    if ap.a.mail == "outlook":
        title = V.pick(r, (f"Inbox - {p.email} - Outlook", f"Re: {c.doc} - Message (HTML)"))
        return Window(ap.names["outlook"], title, "chat")
    return Window(ap.names["thunderbird"], f"Inbox - {p.email} - Mozilla Thunderbird", "chat")


def _meeting_window(ap: _Apps, r: np.random.Generator, c: BlockContext) -> Window:
    kind = ap.a.meeting_app
    if kind == "zoom":
        return Window(
            ap.names["zoom"], V.pick(r, ("Zoom Meeting", "Zoom Meeting", "Zoom")), "watch"
        )
    if kind == "teams":
        return Window(ap.names["teams"], f"{c.meeting} | Microsoft Teams", "watch")
    code = f"{V.slug(c.meeting)[:3]}-{c.pr_number % 9000 + 1000}-xyz"
    return ap.web(f"Meet - {code}", f"https://meet.google.com/{code}", "watch", audible=True)


def _a(ap: _Apps, weight: float, median: float, fn: Callable[..., Window], *args: str) -> Activity:
    """An activity calling ``fn(ap, rng, ctx, *args)``."""

    def build(r: np.random.Generator, c: BlockContext) -> Window:
        return fn(ap, r, c, *args)

    return Activity(weight, median, build)


def _build(ap: _Apps) -> list[Activity]:
    def localhost(ap: _Apps, r: np.random.Generator, c: BlockContext) -> Window:
        page = c.files[0].split(".")[0]
        return ap.web(f"{c.project} dev", f"http://localhost:3000/{page}", "browse")

    return [
        _a(ap, 0.50, 120, _editor, "code"),
        _a(ap, 0.24, 40, _build_cmd),
        _a(ap, 0.07, 45, _lib_docs),
        _a(ap, 0.05, 30, localhost),
        _a(ap, 0.05, 30, _ci),
        _a(ap, 0.05, 40, _pr_page, "browse"),
        _a(ap, 0.04, 40, _stackoverflow),
    ]


def _debug(ap: _Apps) -> list[Activity]:
    def debug_cmd(ap: _Apps, r: np.random.Generator, c: BlockContext) -> Window:
        return ap.term_cmd(c, V.pick(r, V.DEBUG_CMDS[c.language] + V.COMMON_DEBUG_CMDS), "debug")

    def issue(ap: _Apps, r: np.random.Generator, c: BlockContext) -> Window:
        kind, msg = c.error
        n = c.pr_number % 900 + 12
        page = f"{kind}: {msg} · Issue #{n} · {c.lib}/{c.lib}"
        return ap.web(page, f"https://github.com/{c.lib}/{c.lib}/issues/{n}", "read")

    def sentry(ap: _Apps, r: np.random.Generator, c: BlockContext) -> Window:
        kind, msg = c.error
        url = f"https://{ap.profile.org}.sentry.io/issues/{c.pr_number * 31}/"
        return ap.web(f"{kind}: {msg} — {c.project} — Sentry", url, "browse")

    return [
        _a(ap, 0.40, 90, _editor, "debug"),
        _a(ap, 0.20, 45, debug_cmd),
        _a(ap, 0.10, 30, _build_cmd),
        _a(ap, 0.13, 60, _stackoverflow),
        _a(ap, 0.05, 50, issue),
        _a(ap, 0.07, 50, sentry),
        _a(ap, 0.05, 45, _lib_docs),
    ]


def _review(ap: _Apps) -> list[Activity]:
    def ide_diff(ap: _Apps, r: np.random.Generator, c: BlockContext) -> Window:
        file = _pick_file(r, c)
        if ap.a.editor == "jetbrains":
            title = f"{c.project} – Diff: {file} ({c.branch} ↔ main)"
            return Window(ap.names["jetbrains"], title, "review")
        title = f"{file} (Pull Request #{c.pr_number}) - {c.project} - Visual Studio Code"
        return Window(ap.names["vscode"], title, "review")

    def ide_overview(ap: _Apps, r: np.random.Generator, c: BlockContext) -> Window:
        if ap.a.editor == "jetbrains":
            title = f"{c.project} – Pull Request #{c.pr_number}: {c.pr_title}"
            return Window(ap.names["jetbrains"], title, "review")
        title = f"Pull Request #{c.pr_number} - {c.project} - Visual Studio Code"
        return Window(ap.names["vscode"], title, "review")

    def git(ap: _Apps, r: np.random.Generator, c: BlockContext) -> Window:
        return ap.term_cmd(c, V.pick(r, V.GIT_REVIEW_CMDS))

    if ap.a.review_in == "ide":
        return [
            _a(ap, 0.45, 120, ide_diff),
            _a(ap, 0.10, 60, ide_overview),
            _a(ap, 0.15, 25, git),
            _a(ap, 0.18, 60, _editor, "review"),
            _a(ap, 0.08, 40, _pr_page, "review"),
            _a(ap, 0.04, 30, _ci),
        ]
    return [
        _a(ap, 0.55, 120, _pr_page, "review"),
        _a(ap, 0.20, 60, _editor, "review"),
        _a(ap, 0.15, 25, git),
        _a(ap, 0.10, 30, _ci),
    ]


def _write(ap: _Apps) -> list[Activity]:
    return [
        _a(ap, 0.68, 180, _main_doc, "prose"),
        _a(ap, 0.09, 40, _wiki),
        _a(ap, 0.09, 40, _editor, "read"),
        _a(ap, 0.07, 45, _lib_docs),
        _a(ap, 0.07, 30, _chat_window),
    ]


def _read(ap: _Apps) -> list[Activity]:
    def arxiv(ap: _Apps, r: np.random.Generator, c: BlockContext) -> Window:
        return ap.web(f"[{c.paper_id}] {c.paper}", f"https://arxiv.org/abs/{c.paper_id}", "read")

    def pdf(ap: _Apps, r: np.random.Generator, c: BlockContext) -> Window:
        if ap.a.pdf_in_browser:
            url = f"https://arxiv.org/pdf/{c.paper_id}"
            return ap.web(f"{c.paper_id}.pdf", url, "read")
        name = f"{V.slug(c.paper)[:40]}.pdf"
        suffix = " - Adobe Acrobat Reader (64-bit)" if ap.a.os == "windows" else ""
        return Window(ap.names["pdf"], name + suffix, "read")

    def blog(ap: _Apps, r: np.random.Generator, c: BlockContext) -> Window:
        title = f"Notes on {c.paper.split(' for ')[0]} in practice"
        return ap.web(f"{title} | Medium", f"https://medium.com/@{c.lib}/{V.slug(title)}", "read")

    def scholar(ap: _Apps, r: np.random.Generator, c: BlockContext) -> Window:
        q = c.paper.split(" for ")[1]
        url = f"https://scholar.google.com/scholar?q={V.slug(q)}"
        return ap.web(f"{q} - Google Scholar", url, "browse")

    return [
        _a(ap, 0.20, 150, arxiv),
        _a(ap, 0.18, 240, pdf),
        _a(ap, 0.14, 90, _py_docs),
        _a(ap, 0.10, 90, _lib_docs),
        _a(ap, 0.10, 90, _wiki),
        _a(ap, 0.10, 120, blog),
        _a(ap, 0.06, 30, scholar),
        _a(ap, 0.06, 60, _main_doc, "prose"),
        _a(ap, 0.06, 60, _editor, "read"),
    ]


def _communicate(ap: _Apps) -> list[Activity]:
    def calendar(ap: _Apps, r: np.random.Generator, c: BlockContext) -> Window:
        url = "https://calendar.google.com/calendar/r/week"
        return ap.web("Google Calendar - Week", url, "browse")

    return [
        _a(ap, 0.50, 50, _chat_window),
        _a(ap, 0.32, 70, _mail_window),
        _a(ap, 0.06, 20, calendar),
        _a(ap, 0.06, 30, _pr_page, "browse"),
        _a(ap, 0.06, 30, _main_doc, "read"),
    ]


def _meet(ap: _Apps) -> list[Activity]:
    def slides(ap: _Apps, r: np.random.Generator, c: BlockContext) -> Window:
        url = f"https://docs.google.com/presentation/d/{V.slug(c.meeting)[:10]}/edit"
        return ap.web(f"{c.meeting} - Google Slides", url, "read")

    return [
        _a(ap, 0.80, 600, _meeting_window),
        _a(ap, 0.07, 60, slides),
        _a(ap, 0.08, 25, _chat_window),
        _a(ap, 0.05, 40, _main_doc, "read"),
    ]


def _interrupts(ap: _Apps) -> list[Activity]:
    def news(ap: _Apps, r: np.random.Generator, c: BlockContext) -> Window:
        page, url = V.pick(r, V.NEWS)
        return ap.web(page, url, "browse")

    def files(ap: _Apps, r: np.random.Generator, c: BlockContext) -> Window:
        return Window(ap.names["files"], c.project, "browse")

    return [
        _a(ap, 0.50, 20, _chat_window),
        _a(ap, 0.25, 25, _mail_window),
        _a(ap, 0.15, 40, news),
        _a(ap, 0.10, 10, files),
    ]


def break_window(profile: UserProfile, rng: np.random.Generator, last: Window | None) -> Window:
    """The window shown while the user is away (lock screen, media, or the last window)."""
    a = profile.archetype
    names = V.APP_NAMES[a.os]
    if a.locks_screen and rng.random() < 0.8:
        return Window(names["lock"], V.LOCK_TITLES[a.os], "idle")
    if a.break_media == "spotify" and rng.random() < 0.6:
        return Window(names["spotify"], V.pick(rng, V.TRACKS), "idle")
    if a.break_media == "youtube" and rng.random() < 0.5:
        video = V.pick(rng, V.VIDEOS)
        page = f"{video} - YouTube"
        url = f"https://www.youtube.com/watch?v={V.slug(video)[:11]}"
        return Window(names[a.browser], page + V.BROWSER_SUFFIX[a.browser], "idle", url, page, True)
    if last is not None:
        return last._replace(mode="idle")
    return Window(names["files"], "", "idle")


def active_break_window(profile: UserProfile, rng: np.random.Generator) -> Window:
    """A break spent browsing news at the desk (the noisy user's habit)."""
    a = profile.archetype
    page, url = V.pick(rng, V.NEWS)
    browser = V.APP_NAMES[a.os][a.browser]
    return Window(browser, page + V.BROWSER_SUFFIX[a.browser], "browse", url, page)


def generic_window(profile: UserProfile, rng: np.random.Generator, w: Window) -> Window:
    """``w`` with a generic, uninformative title (and a search page for browsers)."""
    if w.url is None:
        app_name = w.app.removesuffix(".exe").removesuffix(".EXE")
        return w._replace(title=V.pick(rng, (app_name, app_name, "", *V.GENERIC_TITLES[1:4])))
    suffix = V.BROWSER_SUFFIX[profile.archetype.browser]
    page = V.pick(rng, ("New Tab", "Google Search", "Search"))
    return w._replace(
        title=page + suffix, url="https://www.google.com/search", page_title=page, mode="browse"
    )


#: Keys of the tables :func:`activity_tables` returns besides the work labels and Meet.
INTERRUPTS: Final = "interrupts"


def activity_tables(profile: UserProfile) -> dict[str, list[Activity]]:
    """Weighted activities per label (plus :data:`INTERRUPTS`) for ``profile``."""
    ap = _Apps(profile)
    tables = {
        "Build": _build(ap),
        "Debug": _debug(ap),
        "Review": _review(ap),
        "Write": _write(ap),
        "ReadResearch": _read(ap),
        "Communicate": _communicate(ap),
        "Meet": _meet(ap),
        INTERRUPTS: _interrupts(ap),
    }
    missing = set(WORK_LABELS) - set(tables)
    if missing:  # a new work label without activities is a programming error
        raise RuntimeError(f"no activity table for {sorted(missing)}")
    return tables
