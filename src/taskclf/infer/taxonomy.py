"""Personal taxonomy: group the eight core labels into a person's own buckets.

A taxonomy is a small YAML file (``configs/taxonomy.yaml`` by default)::

    version: 1
    aggregation: sum          # how core probabilities combine inside a bucket: sum | max
    mixed_name: Mixed/Unknown # what the reject label is called in reports
    buckets:
      - name: Deep work
        labels: [Build, Debug, Write]
        color: "#1f77b4"      # optional, '#rrggbb'; a fixed palette fills it in
        weight: 1.0           # optional, > 0; reweights the bucket's probability

Rules:

- Every core label belongs to at most one bucket. Core labels no bucket lists go to the bucket
  named ``Other`` (``OTHER_BUCKET``); it is implicit (created after the listed buckets, grey)
  unless the file defines a bucket of that name, which may then list labels of its own or none.
- Bucket names are unique, non-empty, and differ from ``mixed_name``.
- The reject label ``Mixed/Unknown`` maps to ``mixed_name``; it is never a bucket.

:func:`map_labels` maps smoothed per-minute labels; :func:`bucket_probabilities` turns core
probabilities into bucket probabilities: for bucket ``b`` with weight ``w_b``,
``s_b = w_b * sum_{l in b} p_l`` (``aggregation: sum``) or ``w_b * max_{l in b} p_l``
(``max``), then ``P_b = s_b / sum_b' s_b'`` (an all-zero row becomes uniform).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Final, Literal

import numpy as np
import yaml
from numpy.typing import NDArray
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from taskclf.core._atomic import atomic_write_text
from taskclf.core.defaults import MIXED_UNKNOWN
from taskclf.core.errors import ConfigError, InputError, LabelError
from taskclf.core.types import LABEL_SET_V1, CoreLabel

TAXONOMY_VERSION: Final = 1  # the only format version so far
OTHER_BUCKET = "Other"
OTHER_COLOR = "#bdbdbd"
MIXED_COLOR = "#757575"
#: Colors given to buckets without one, by position (matplotlib's tab10 without the greys).
PALETTE: tuple[str, ...] = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#bcbd22",
    "#17becf",
)
_HEX = re.compile(r"#[0-9a-fA-F]{6}")
_CORE = frozenset(LABEL_SET_V1)


class TaxonomyBucket(BaseModel):
    """One user bucket: a name, the core labels it groups, a color and a weight."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    labels: tuple[str, ...] = ()
    color: str | None = None
    weight: float = Field(default=1.0, gt=0.0)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not value.strip() or value != value.strip():
            raise ValueError(f"name must be non-empty without surrounding spaces, got {value!r}")
        return value

    @field_validator("labels")
    @classmethod
    def _labels(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for label in value:
            if label not in _CORE:
                hint = " (the reject label is not a bucket label)" if label == MIXED_UNKNOWN else ""
                raise ValueError(
                    f"unknown core label {label!r}{hint}; expected one of {', '.join(LABEL_SET_V1)}"
                )
        if len(set(value)) != len(value):
            raise ValueError(f"a label is listed twice in {list(value)}")
        return value

    @field_validator("color")
    @classmethod
    def _color(cls, value: str | None) -> str | None:
        if value is not None and not _HEX.fullmatch(value):
            raise ValueError(f"color must be a hex '#rrggbb', got {value!r}")
        return value

    @field_validator("weight")
    @classmethod
    def _weight(cls, value: float) -> float:
        if not math.isfinite(value):
            raise ValueError(f"weight must be a finite number > 0, got {value!r}")
        return value


class TaxonomyConfig(BaseModel):
    """A validated taxonomy (see the module docstring for the rules)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    version: Literal[1] = 1
    aggregation: Literal["sum", "max"] = "sum"
    mixed_name: str = MIXED_UNKNOWN
    buckets: tuple[TaxonomyBucket, ...]

    @field_validator("mixed_name")
    @classmethod
    def _mixed(cls, value: str) -> str:
        if not value.strip() or value == OTHER_BUCKET:
            raise ValueError(f"mixed_name must be non-empty and not {OTHER_BUCKET!r}")
        return value

    @model_validator(mode="after")
    def _buckets(self) -> TaxonomyConfig:
        if not self.buckets:
            raise ValueError("list at least one bucket under 'buckets'")
        problem = _cross_check(self.buckets, self.mixed_name)
        if problem is not None:
            raise ValueError(problem[2])
        return self

    # derived views ----------------------------------------------------------------------
    @property
    def label_to_bucket(self) -> dict[str, str]:
        """Every core label -> its bucket name (unlisted labels -> ``Other``)."""
        mapping = {label: b.name for b in self.buckets for label in b.labels}
        return {label: mapping.get(label, OTHER_BUCKET) for label in LABEL_SET_V1}

    def bucket_names(self) -> list[str]:
        """Output bucket order: listed buckets, then an implicit ``Other`` if any label needs it.

        A listed ``Other`` bucket without labels and without unlisted labels to take is dropped.
        """
        used = set(self.label_to_bucket.values())
        names = [b.name for b in self.buckets if b.labels or b.name in used]
        if OTHER_BUCKET in used and OTHER_BUCKET not in names:
            names.append(OTHER_BUCKET)
        return names

    def colors(self) -> dict[str, str]:
        """Color of every bucket name and of ``mixed_name``."""
        out = {OTHER_BUCKET: OTHER_COLOR}
        for i, bucket in enumerate(self.buckets):
            out[bucket.name] = bucket.color or PALETTE[i % len(PALETTE)]
        out[self.mixed_name] = MIXED_COLOR
        return out

    def weights(self) -> dict[str, float]:
        """Weight of every bucket name (``Other`` is 1 unless listed)."""
        out = {OTHER_BUCKET: 1.0}
        out.update({b.name: b.weight for b in self.buckets})
        return out


def _cross_check(
    buckets: Sequence[TaxonomyBucket], mixed_name: str | None
) -> tuple[int, tuple[str | int, ...], str] | None:
    """First cross-bucket problem as ``(bucket index, field location, message)``, or None."""
    names: dict[str, int] = {}
    owners: dict[str, int] = {}
    for i, bucket in enumerate(buckets):
        where = f"bucket #{i + 1} {bucket.name!r}"
        if bucket.name in names:
            first = names[bucket.name] + 1
            return i, ("name",), f"{where}: duplicate bucket name (also bucket #{first})"
        if mixed_name is not None and bucket.name == mixed_name:
            return i, ("name",), f"{where}: a bucket may not be named like mixed_name"
        if not bucket.labels and bucket.name != OTHER_BUCKET:
            return i, ("labels",), f"{where}: list at least one core label under 'labels'"
        names[bucket.name] = i
        for j, label in enumerate(bucket.labels):
            if label in owners:
                first_name = buckets[owners[label]].name
                return (
                    i,
                    ("labels", j),
                    (
                        f"{where}: label {label!r} is already in bucket #{owners[label] + 1} "
                        f"{first_name!r}; a core label belongs to one bucket"
                    ),
                )
            owners[label] = i
    return None


def default_taxonomy() -> TaxonomyConfig:
    """The built-in taxonomy written by ``taskclf taxonomy init``."""
    L = CoreLabel
    return TaxonomyConfig(
        buckets=(
            TaxonomyBucket(name="Deep work", labels=(L.Build, L.Debug, L.Write), color="#1f77b4"),
            TaxonomyBucket(
                name="Collaboration",
                labels=(L.Review, L.Communicate, L.Meet),
                color="#ff7f0e",
            ),
            TaxonomyBucket(name="Learning", labels=(L.ReadResearch,), color="#2ca02c"),
            TaxonomyBucket(name="Break", labels=(L.BreakIdle,), color="#9467bd"),
        )
    )


# --------------------------------------------------------------------------------------------
# mapping


def map_labels(labels: Sequence[str], taxonomy: TaxonomyConfig) -> list[str]:
    """Map (smoothed) core labels to bucket names; the reject label maps to ``mixed_name``.

    Raises:
        LabelError: A label that is neither a core label nor Mixed/Unknown (names its index).
    """
    lookup = dict(taxonomy.label_to_bucket)
    lookup[MIXED_UNKNOWN] = taxonomy.mixed_name
    out: list[str] = []
    for i, label in enumerate(labels):
        mapped = lookup.get(label) if isinstance(label, str) else None
        if mapped is None:
            raise LabelError(
                f"cannot map label #{i} {label!r}: expected a core label "
                f"({', '.join(LABEL_SET_V1)}) or {MIXED_UNKNOWN!r}"
            )
        out.append(mapped)
    return out


def bucket_probabilities(
    core_probs: NDArray[np.floating[Any]], taxonomy: TaxonomyConfig
) -> NDArray[np.float64]:
    """Bucket probabilities from core probabilities (formula in the module docstring).

    Args:
        core_probs: Shape ``(n, 8)`` (or ``(8,)``), columns in ``LABEL_SET_V1`` order, finite
            and non-negative.
        taxonomy: The taxonomy; output columns follow ``taxonomy.bucket_names()``.

    Returns:
        Shape ``(n, n_buckets)`` (or ``(n_buckets,)``), float64, rows summing to 1.

    Raises:
        InputError: Wrong shape, or a non-finite / negative probability.
    """
    probs = np.asarray(core_probs, dtype=np.float64)
    single = probs.ndim == 1
    matrix = probs[None, :] if single else probs
    if matrix.ndim != 2 or matrix.shape[1] != len(LABEL_SET_V1):
        raise InputError(
            f"core_probs must have shape (n, {len(LABEL_SET_V1)}) in label_set order "
            f"{list(LABEL_SET_V1)}, got {probs.shape}"
        )
    if not np.isfinite(matrix).all() or (matrix < 0).any():
        row = int(np.flatnonzero(~np.isfinite(matrix).all(axis=1) | (matrix < 0).any(axis=1))[0])
        raise InputError(f"core_probs row {row} has a non-finite or negative value")
    # The result is scale-invariant per row; dividing by the row max first keeps tiny
    # (even subnormal) probabilities from losing precision when weighted.
    row_max = matrix.max(axis=1, keepdims=True)
    matrix = np.divide(matrix, row_max, out=np.zeros_like(matrix), where=row_max > 0)
    names = taxonomy.bucket_names()
    weights = taxonomy.weights()
    members = np.zeros((len(LABEL_SET_V1), len(names)), dtype=bool)
    column = {name: j for j, name in enumerate(names)}
    for i, label in enumerate(LABEL_SET_V1):
        members[i, column[taxonomy.label_to_bucket[label]]] = True
    if taxonomy.aggregation == "sum":
        scores = matrix @ members.astype(np.float64)
    else:
        scores = np.where(members[None, :, :], matrix[:, :, None], 0.0).max(axis=1)
    scores = scores * np.array([weights[name] for name in names])
    totals = scores.sum(axis=1, keepdims=True)
    uniform = np.full_like(scores, 1.0 / len(names))
    out: NDArray[np.float64] = np.divide(scores, totals, out=uniform, where=totals > 0)
    return out[0] if single else out


# --------------------------------------------------------------------------------------------
# files


def load_taxonomy(path: Path) -> TaxonomyConfig:
    """Read and validate a taxonomy YAML file.

    Raises:
        ConfigError: Missing file, bad YAML, or an invalid taxonomy; the message names the
            line and the bucket.
    """
    if not path.exists():
        raise ConfigError(
            f"no taxonomy at '{path}'; create one with 'taskclf taxonomy init' (or pass --file)"
        )
    try:
        text = path.read_text(encoding="utf-8")
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except UnicodeDecodeError:
        raise ConfigError(f"taxonomy '{path}' is not UTF-8 text") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"taxonomy '{path}'{where}: not valid YAML ({problem})") from None
    return parse_taxonomy(data, where=str(path), node=node)


def parse_taxonomy(
    data: object, *, where: str = "taxonomy", node: yaml.Node | None = None
) -> TaxonomyConfig:
    """Validate parsed YAML/JSON data; ``node`` (from ``yaml.compose``) adds line numbers."""
    if not isinstance(data, Mapping):
        raise ConfigError(
            f"taxonomy '{where}': expected a mapping with 'version' and 'buckets', got "
            f"{type(data).__name__}"
        )
    lines = _LineIndex(node)
    raw_buckets = data.get("buckets")
    if not isinstance(raw_buckets, list) or not raw_buckets:
        raise ConfigError(
            f"taxonomy '{where}'{lines.key('buckets')}: 'buckets' must be a non-empty list of "
            "{name, labels, color?, weight?}"
        )
    buckets: list[TaxonomyBucket] = []
    for i, raw in enumerate(raw_buckets):
        name = raw.get("name") if isinstance(raw, Mapping) else None
        label = f"bucket #{i + 1}" + (f" {name!r}" if isinstance(name, str) else "")
        try:
            buckets.append(TaxonomyBucket.model_validate(raw))
        except ValidationError as exc:
            err = exc.errors()[0]
            loc = _label_loc(raw, tuple(err["loc"]))
            field = ".".join(str(p) for p in loc) or "bucket"
            raise ConfigError(
                f"taxonomy '{where}'{lines.bucket(i, loc)}, {label}: {field}: {_clean(err['msg'])}"
            ) from None
    mixed = data.get("mixed_name", MIXED_UNKNOWN)
    problem = _cross_check(buckets, mixed if isinstance(mixed, str) else None)
    if problem is not None:
        index, loc, message = problem
        raise ConfigError(f"taxonomy '{where}'{lines.bucket(index, loc)}: {message}")
    try:
        return TaxonomyConfig.model_validate({**data, "buckets": buckets})
    except ValidationError as exc:
        err = exc.errors()[0]
        key = str(err["loc"][0]) if err["loc"] else ""
        raise ConfigError(
            f"taxonomy '{where}'{lines.key(key)}: {key or 'file'}: {_clean(err['msg'])}"
        ) from None


def _label_loc(raw: object, loc: tuple[Any, ...]) -> tuple[Any, ...]:
    """Point a whole-list ``labels`` error at the first offending entry."""
    labels = raw.get("labels") if isinstance(raw, Mapping) else None
    if loc != ("labels",) or not isinstance(labels, list):
        return loc
    seen: set[object] = set()
    for j, label in enumerate(labels):
        if label not in _CORE or label in seen:
            return ("labels", j)
        seen.add(label)
    return loc


def _clean(message: str) -> str:
    return message.removeprefix("Value error, ")


class _LineIndex:
    """Line numbers (1-based) of keys and bucket fields in a composed YAML document."""

    def __init__(self, node: yaml.Node | None) -> None:
        self._top: dict[str, yaml.Node] = {}
        self._key_lines: dict[str, int] = {}
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                if isinstance(key, yaml.ScalarNode):
                    self._top[str(key.value)] = value
                    self._key_lines[str(key.value)] = key.start_mark.line + 1

    def key(self, name: str) -> str:
        line = self._key_lines.get(name)
        return f" line {line}" if line else ""

    def bucket(self, index: int, loc: tuple[Any, ...] | Sequence[Any]) -> str:
        seq = self._top.get("buckets")
        if not isinstance(seq, yaml.SequenceNode) or index >= len(seq.value):
            return ""
        item = seq.value[index]
        line = item.start_mark.line + 1
        if loc and isinstance(item, yaml.MappingNode):
            for key, value in item.value:
                if isinstance(key, yaml.ScalarNode) and key.value == str(loc[0]):
                    line = key.start_mark.line + 1
                    if len(loc) > 1 and isinstance(value, yaml.SequenceNode):
                        pos = loc[1]
                        if isinstance(pos, int) and pos < len(value.value):
                            line = value.value[pos].start_mark.line + 1
        return f" line {line}"


def taxonomy_to_yaml(taxonomy: TaxonomyConfig) -> str:
    """Deterministic YAML text of ``taxonomy`` (with a short explanatory header)."""
    buckets: list[dict[str, Any]] = []
    for bucket in taxonomy.buckets:
        entry: dict[str, Any] = {"name": bucket.name, "labels": list(bucket.labels)}
        if bucket.color is not None:
            entry["color"] = bucket.color
        if bucket.weight != 1.0:
            entry["weight"] = bucket.weight
        buckets.append(entry)
    body = {
        "version": taxonomy.version,
        "aggregation": taxonomy.aggregation,
        "mixed_name": taxonomy.mixed_name,
        "buckets": buckets,
    }
    header = (
        "# taskclf taxonomy: your buckets of the eight core labels\n"
        f"# core labels: {', '.join(LABEL_SET_V1)}\n"
        f"# labels no bucket lists go to '{OTHER_BUCKET}'; aggregation: sum | max\n"
    )
    dumped = yaml.safe_dump(
        body, sort_keys=False, allow_unicode=True, default_flow_style=None, width=100
    )
    return header + dumped


def save_taxonomy(taxonomy: TaxonomyConfig, path: Path, *, overwrite: bool = False) -> Path:
    """Write ``taxonomy`` as YAML atomically.

    Raises:
        ConfigError: ``path`` exists and ``overwrite`` is False.
    """
    if path.exists() and not overwrite:
        raise ConfigError(f"taxonomy '{path}' already exists; pass --force to overwrite it")
    atomic_write_text(path, taxonomy_to_yaml(taxonomy))
    return path


def resolve_taxonomy(default_path: Path, explicit: Path | None = None) -> TaxonomyConfig | None:
    """The taxonomy in effect: ``explicit`` (must exist), else ``default_path`` if present."""
    if explicit is not None:
        return load_taxonomy(explicit)
    if default_path.exists():
        return load_taxonomy(default_path)
    return None
