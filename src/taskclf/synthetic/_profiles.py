"""User archetypes and the per-user profile drawn from them.

An archetype fixes a user's habits (OS, apps, where they review code, how they chat and meet)
and rhythm; :func:`make_profile` jitters its numeric style parameters with the user's own
random stream, so ``user-07`` is a "regular" user like ``user-01`` but not a copy of them.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Final

import numpy as np

from taskclf.synthetic import _vocab as V

#: The work labels a free block can take (Meet comes from the calendar, BreakIdle from breaks).
WORK_LABELS: Final = ("Build", "Debug", "Review", "Write", "ReadResearch", "Communicate")


@dataclass(frozen=True)
class Meeting:
    """A recurring meeting: local weekday (0 = Monday, None = every workday), start, length."""

    name: str
    weekday: int | None
    hour: float
    minutes: int


@dataclass(frozen=True)
class Archetype:
    """Habits and rhythm shared by every user of one kind."""

    name: str
    timezone: str
    os: str
    browser: str
    editor: str  # vscode | jetbrains | vim
    chat: str  # slack | teams
    meeting_app: str  # zoom | teams | meet
    mail: str  # gmail | outlook | thunderbird
    docs: str  # gdocs | word | markdown | notion | confluence
    review_in: str  # browser | ide
    review_site: str  # github | gitlab
    pdf_in_browser: bool
    locks_screen: bool
    break_media: str  # youtube | spotify | none
    has_input_watcher: bool
    poll_seconds: int
    start_hour: float
    start_sd_hours: float
    day_hours: float
    lunch_hour: float
    task_mix: tuple[float, ...]  # weights over WORK_LABELS
    block_minutes: tuple[int, int]
    break_every_minutes: int
    noise_rate: float
    generic_title_rate: float
    dwell_scale: float
    active_break_rate: float
    typing_scale: float
    mouse_scale: float
    weekend_work_prob: float
    adhoc_meeting_prob: float
    meetings: tuple[Meeting, ...] = field(default_factory=tuple)
    #: Longest typical dwell of an interruption (other task's window) inside a block.
    noise_dwell_seconds: float = 30.0
    #: Coarse labeling: share of a labeled work block spent on *another* task (several minutes
    #: at a time) that the user still labels with the block's label, as people who label their
    #: day in big blocks do. 0 = the label always matches the activity.
    drift_share: float = 0.0
    #: Median length of one such off-task stretch, in minutes.
    drift_minutes: float = 6.0
    #: Coarse labeling: the user labels work from memory on a grid of this many minutes (0 =
    #: exact boundaries); meetings and breaks keep their exact calendar times.
    label_grid_minutes: int = 0
    #: How textbook a user's activity is: the weights of a task's activities are raised to
    #: this power (> 1 concentrates on each task's main windows, 1 = as listed).
    focus: float = 1.0


ARCHETYPES: Final[tuple[Archetype, ...]] = (
    Archetype(
        name="regular",
        timezone="Europe/Warsaw",
        os="windows",
        browser="chrome",
        editor="vscode",
        chat="slack",
        meeting_app="zoom",
        mail="gmail",
        docs="gdocs",
        review_in="browser",
        review_site="github",
        pdf_in_browser=True,
        locks_screen=True,
        break_media="none",
        has_input_watcher=True,
        poll_seconds=5,
        start_hour=8.5,
        start_sd_hours=0.2,
        day_hours=8.5,
        lunch_hour=12.5,
        task_mix=(0.30, 0.15, 0.15, 0.12, 0.13, 0.15),
        block_minutes=(30, 90),
        break_every_minutes=100,
        noise_rate=0.02,
        generic_title_rate=0.0,
        dwell_scale=1.8,
        active_break_rate=0.0,
        typing_scale=1.0,
        mouse_scale=1.0,
        weekend_work_prob=0.05,
        adhoc_meeting_prob=0.2,
        meetings=(Meeting("Daily standup", None, 9.25, 15), Meeting("Retro", 4, 14.0, 60)),
        focus=2.0,
    ),
    Archetype(
        name="noisy",
        timezone="America/New_York",
        os="macos",
        browser="firefox",
        editor="vscode",
        chat="slack",
        meeting_app="meet",
        mail="gmail",
        docs="notion",
        review_in="browser",
        review_site="gitlab",
        pdf_in_browser=True,
        locks_screen=False,
        break_media="youtube",
        has_input_watcher=True,
        poll_seconds=5,
        start_hour=9.5,
        start_sd_hours=0.8,
        day_hours=8.0,
        lunch_hour=12.75,
        task_mix=(0.22, 0.18, 0.12, 0.12, 0.16, 0.20),
        block_minutes=(10, 35),
        break_every_minutes=70,
        noise_rate=0.30,
        generic_title_rate=0.30,
        dwell_scale=0.5,
        active_break_rate=0.15,
        typing_scale=0.8,
        mouse_scale=1.3,
        weekend_work_prob=0.25,
        adhoc_meeting_prob=0.4,
        meetings=(
            Meeting("Daily standup", None, 10.0, 15),
            Meeting("Design review", 2, 15.0, 45),
        ),
        noise_dwell_seconds=90.0,
        drift_share=0.30,
        drift_minutes=8.0,
        label_grid_minutes=15,
    ),
    Archetype(
        name="ide_reviewer",
        timezone="Asia/Tokyo",
        os="linux",
        browser="firefox",
        editor="jetbrains",
        chat="slack",
        meeting_app="zoom",
        mail="thunderbird",
        docs="markdown",
        review_in="ide",
        review_site="github",
        pdf_in_browser=False,
        locks_screen=True,
        break_media="spotify",
        has_input_watcher=True,
        poll_seconds=10,
        start_hour=9.75,
        start_sd_hours=0.4,
        day_hours=9.0,
        lunch_hour=12.0,
        task_mix=(0.30, 0.18, 0.22, 0.08, 0.12, 0.10),
        block_minutes=(20, 75),
        break_every_minutes=110,
        noise_rate=0.10,
        generic_title_rate=0.05,
        dwell_scale=1.0,
        active_break_rate=0.0,
        typing_scale=1.3,
        mouse_scale=0.7,
        weekend_work_prob=0.1,
        adhoc_meeting_prob=0.15,
        meetings=(
            Meeting("Daily standup", None, 10.0, 15),
            Meeting("Architecture review", 1, 15.0, 60),
        ),
    ),
    Archetype(
        name="researcher",
        timezone="America/Los_Angeles",
        os="macos",
        browser="chrome",
        editor="vscode",
        chat="teams",
        meeting_app="teams",
        mail="outlook",
        docs="word",
        review_in="browser",
        review_site="github",
        pdf_in_browser=False,
        locks_screen=True,
        break_media="none",
        has_input_watcher=False,
        poll_seconds=5,
        start_hour=8.0,
        start_sd_hours=0.5,
        day_hours=8.0,
        lunch_hour=12.0,
        task_mix=(0.10, 0.06, 0.06, 0.30, 0.36, 0.12),
        block_minutes=(25, 90),
        break_every_minutes=90,
        noise_rate=0.08,
        generic_title_rate=0.04,
        dwell_scale=1.3,
        active_break_rate=0.0,
        typing_scale=1.0,
        mouse_scale=1.0,
        weekend_work_prob=0.15,
        adhoc_meeting_prob=0.2,
        meetings=(Meeting("Reading group", 3, 11.0, 60), Meeting("Team sync", 0, 10.0, 30)),
        drift_share=0.25,
        drift_minutes=4.0,
    ),
    Archetype(
        name="manager",
        timezone="Europe/London",
        os="windows",
        browser="chrome",
        editor="vscode",
        chat="teams",
        meeting_app="teams",
        mail="outlook",
        docs="confluence",
        review_in="browser",
        review_site="github",
        pdf_in_browser=True,
        locks_screen=True,
        break_media="none",
        has_input_watcher=False,
        poll_seconds=5,
        start_hour=8.75,
        start_sd_hours=0.3,
        day_hours=9.0,
        lunch_hour=12.5,
        task_mix=(0.06, 0.04, 0.20, 0.25, 0.10, 0.35),
        block_minutes=(15, 50),
        break_every_minutes=120,
        noise_rate=0.14,
        generic_title_rate=0.08,
        dwell_scale=0.8,
        active_break_rate=0.0,
        typing_scale=1.0,
        mouse_scale=1.0,
        weekend_work_prob=0.1,
        adhoc_meeting_prob=0.7,
        meetings=(
            Meeting("Daily standup", None, 9.5, 15),
            Meeting("Sprint planning", 0, 11.0, 60),
            Meeting("1:1", 1, 14.0, 30),
            Meeting("Roadmap sync", 2, 16.0, 45),
            Meeting("Hiring debrief", 3, 15.0, 30),
            Meeting("All hands", 4, 16.0, 60),
        ),
        label_grid_minutes=30,
    ),
    Archetype(
        name="night_owl",
        timezone="Asia/Kolkata",
        os="linux",
        browser="chrome",
        editor="vim",
        chat="slack",
        meeting_app="meet",
        mail="gmail",
        docs="markdown",
        review_in="browser",
        review_site="github",
        pdf_in_browser=True,
        locks_screen=True,
        break_media="spotify",
        has_input_watcher=True,
        poll_seconds=5,
        start_hour=11.5,
        start_sd_hours=0.7,
        day_hours=9.0,
        lunch_hour=14.5,
        task_mix=(0.34, 0.22, 0.12, 0.08, 0.14, 0.10),
        block_minutes=(25, 90),
        break_every_minutes=100,
        noise_rate=0.07,
        generic_title_rate=0.03,
        dwell_scale=1.2,
        active_break_rate=0.0,
        typing_scale=1.2,
        mouse_scale=0.6,
        weekend_work_prob=0.3,
        adhoc_meeting_prob=0.1,
        meetings=(Meeting("Daily standup", None, 12.0, 15),),
        focus=1.5,
    ),
)

#: Time zones for users beyond the first cycle of archetypes.
EXTRA_TIMEZONES: Final = (
    "Australia/Sydney",
    "America/Sao_Paulo",
    "Europe/Berlin",
    "America/Chicago",
    "Asia/Singapore",
    "Africa/Nairobi",
)


@dataclass(frozen=True)
class UserProfile:
    """One synthetic user: archetype habits, jittered style, and personal vocabulary."""

    user_id: str
    index: int
    archetype: Archetype
    hostname: str
    projects: tuple[str, ...]
    languages: tuple[str, ...]
    org: str
    workspace: str
    colleagues: tuple[str, ...]
    email: str

    def summary(self) -> dict[str, Any]:
        """Profile summary for ``users.json`` (habits and style parameters; no secrets)."""
        a = self.archetype
        return {
            "user_id": self.user_id,
            "archetype": a.name,
            "timezone": a.timezone,
            "hostname": self.hostname,
            "os": a.os,
            "has_input_watcher": a.has_input_watcher,
            "browser": a.browser,
            "apps": {
                "editor": a.editor,
                "chat": a.chat,
                "meeting": a.meeting_app,
                "mail": a.mail,
                "docs": a.docs,
                "review_in": a.review_in,
                "review_site": a.review_site,
            },
            "style": {
                "start_hour": round(a.start_hour, 3),
                "day_hours": round(a.day_hours, 3),
                "lunch_hour": round(a.lunch_hour, 3),
                "block_minutes": list(a.block_minutes),
                "break_every_minutes": a.break_every_minutes,
                "noise_rate": round(a.noise_rate, 4),
                "noise_dwell_seconds": a.noise_dwell_seconds,
                "generic_title_rate": round(a.generic_title_rate, 4),
                "dwell_scale": round(a.dwell_scale, 3),
                "typing_scale": round(a.typing_scale, 3),
                "poll_seconds": a.poll_seconds,
                "locks_screen": a.locks_screen,
                "weekend_work_prob": round(a.weekend_work_prob, 3),
                "focus": round(a.focus, 3),
                "drift_share": round(a.drift_share, 4),
                "drift_minutes": round(a.drift_minutes, 3),
                "label_grid_minutes": a.label_grid_minutes,
                "task_mix": {
                    label: round(w, 4) for label, w in zip(WORK_LABELS, a.task_mix, strict=True)
                },
                "meetings": [
                    {"name": m.name, "weekday": m.weekday, "hour": m.hour, "minutes": m.minutes}
                    for m in a.meetings
                ],
            },
        }


def user_id_for(index: int) -> str:
    """``user-01``, ``user-02``, ... (0-based ``index``)."""
    return f"user-{index + 1:02d}"


def _hostname(os_name: str, rng: np.random.Generator) -> str:
    alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
    code = "".join(V.pick(rng, alphabet) for _ in range(7))
    if os_name == "windows":
        return f"DESKTOP-{code}"
    if os_name == "macos":
        return f"MacBook-Pro-{code[:4].lower()}.local"
    return f"devbox-{code[:5].lower()}"


def _jitter(base: Archetype, index: int, rng: np.random.Generator) -> Archetype:
    """Vary the numeric style of an archetype for users after its first one."""
    cycle = index // len(ARCHETYPES)
    mix = np.asarray(base.task_mix) * rng.uniform(0.75, 1.25, size=len(base.task_mix))
    mix = mix / mix.sum()
    return replace(
        base,
        timezone=base.timezone if cycle == 0 else V.pick(rng, EXTRA_TIMEZONES),
        start_hour=base.start_hour + float(rng.uniform(-0.5, 0.5)) * (cycle > 0),
        lunch_hour=base.lunch_hour + float(rng.uniform(-0.25, 0.25)) * (cycle > 0),
        task_mix=tuple(float(x) for x in mix),
        noise_rate=base.noise_rate * float(rng.uniform(0.8, 1.2)),
        generic_title_rate=base.generic_title_rate * float(rng.uniform(0.8, 1.2)),
        dwell_scale=base.dwell_scale * float(rng.uniform(0.85, 1.15)),
        typing_scale=base.typing_scale * float(rng.uniform(0.85, 1.15)),
        mouse_scale=base.mouse_scale * float(rng.uniform(0.85, 1.15)),
        drift_share=base.drift_share * float(rng.uniform(0.8, 1.2)),
    )


def make_profile(index: int, seed: int) -> UserProfile:
    """The profile of user ``index`` (0-based) for ``seed``; independent of the user count."""
    rng = np.random.default_rng([seed, index, 0])
    archetype = _jitter(ARCHETYPES[index % len(ARCHETYPES)], index, rng)
    n_projects = int(rng.integers(2, 4))
    projects = V.sample(rng, V.PROJECTS, n_projects)
    languages = tuple(V.pick(rng, V.LANGUAGES) for _ in projects)
    org_idx = int(rng.integers(len(V.ORGS)))
    colleagues = tuple(
        f"{name} {V.pick(rng, V.LAST_INITIALS)}." for name in V.sample(rng, V.FIRST_NAMES, 6)
    )
    first = V.pick(rng, V.FIRST_NAMES).lower()
    return UserProfile(
        user_id=user_id_for(index),
        index=index,
        archetype=archetype,
        hostname=_hostname(archetype.os, rng),
        projects=projects,
        languages=languages,
        org=V.ORGS[org_idx],
        workspace=V.WORKSPACES[org_idx],
        colleagues=colleagues,
        email=f"{first}.{index + 1:02d}@{V.ORGS[org_idx]}.example",
    )
