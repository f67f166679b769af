"""Taxonomy: YAML format (golden files), validation messages, mapping and bucket probabilities."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from taskclf.cli.main import run
from taskclf.core.defaults import MIXED_UNKNOWN
from taskclf.core.errors import ConfigError, InputError, LabelError
from taskclf.core.types import LABEL_SET_V1
from taskclf.infer.taxonomy import (
    OTHER_BUCKET,
    TaxonomyBucket,
    TaxonomyConfig,
    bucket_probabilities,
    default_taxonomy,
    load_taxonomy,
    map_labels,
    save_taxonomy,
    taxonomy_to_yaml,
)

GOLDEN = Path(__file__).parent / "golden"


def test_default_taxonomy_matches_golden_bytes(tmp_path):
    path = save_taxonomy(default_taxonomy(), tmp_path / "taxonomy.yaml")
    assert path.read_bytes() == (GOLDEN / "taxonomy_default_v1.yaml").read_bytes()
    assert load_taxonomy(path) == default_taxonomy()


def test_default_taxonomy_covers_every_label():
    tax = default_taxonomy()
    assert tax.bucket_names() == ["Deep work", "Collaboration", "Learning", "Break"]
    assert map_labels(["Build", "Meet", "ReadResearch", "BreakIdle", MIXED_UNKNOWN], tax) == [
        "Deep work",
        "Collaboration",
        "Learning",
        "Break",
        MIXED_UNKNOWN,
    ]


def test_custom_golden_keeps_loading():
    tax = load_taxonomy(GOLDEN / "taxonomy_custom_v1.yaml")
    assert tax.aggregation == "max" and tax.mixed_name == "Unsure"
    assert tax.bucket_names() == ["Coding", "Talking", "Other"]
    assert tax.label_to_bucket["Write"] == OTHER_BUCKET
    assert tax.label_to_bucket["BreakIdle"] == OTHER_BUCKET  # unlisted -> the explicit Other
    assert tax.colors()["Other"] == "#abcdef" and tax.weights()["Coding"] == 2.0
    assert map_labels([MIXED_UNKNOWN, "Review"], tax) == ["Unsure", "Coding"]
    # Saving and re-loading is lossless.
    assert TaxonomyConfig.model_validate_json(tax.model_dump_json()) == tax


def test_implicit_other_bucket_is_appended_only_when_needed():
    tax = TaxonomyConfig(buckets=(TaxonomyBucket(name="Code", labels=("Build", "Debug")),))
    assert tax.bucket_names() == ["Code", OTHER_BUCKET]
    assert map_labels(["Meet", "Build"], tax) == [OTHER_BUCKET, "Code"]


def test_map_labels_rejects_unknown_with_index():
    with pytest.raises(LabelError, match=r"label #1 'Coding'"):
        map_labels(["Build", "Coding"], default_taxonomy())


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "t.yaml"
    path.write_text(text, encoding="utf-8")
    return path


BAD_FILES = [
    (
        "version: 1\nbuckets:\n  - name: A\n    labels: [Build, Bild]\n",
        ["line 4", "bucket #1 'A'", "unknown core label 'Bild'"],
    ),
    (
        "version: 1\nbuckets:\n  - name: A\n    labels: [Build]\n  - name: B\n    labels:\n"
        "      - Write\n      - Build\n",
        ["line 8", "bucket #2 'B'", "'Build' is already in bucket #1 'A'"],
    ),
    (
        "version: 1\nbuckets:\n  - name: A\n    labels: [Build]\n    color: '#12g456'\n",
        ["line 5", "bucket #1 'A'", "color", "'#12g456'"],
    ),
    (
        "version: 1\nbuckets:\n  - name: A\n    labels: [Build]\n  - name: A\n    labels: [Meet]\n",
        ["line 5", "bucket #2 'A'", "duplicate bucket name"],
    ),
    (
        "version: 1\nbuckets:\n  - name: Mixed/Unknown\n    labels: [Build]\n",
        ["line 3", "mixed_name"],
    ),
    ("version: 1\nbuckets:\n  - name: A\n    labels: [Build\n", ["not valid YAML"]),
    ("version: 1\nbuckets: []\n", ["line 2", "non-empty list"]),
    ("version: 2\nbuckets:\n  - name: A\n    labels: [Build]\n", ["line 1", "version"]),
    (
        "version: 1\naggregation: mean\nbuckets:\n  - name: A\n    labels: [Build]\n",
        ["line 2", "aggregation"],
    ),
    (
        "version: 1\nbuckets:\n  - name: A\n    labels: [Build]\n    wieght: 2\n",
        ["line 5", "wieght"],
    ),
    (
        "version: 1\nbuckets:\n  - name: A\n    labels: [Build]\n    weight: -1\n",
        ["line 5", "weight"],
    ),
    (
        "version: 1\nbuckets:\n  - name: A\n    labels: [Build, Build]\n",
        ["line 4", "listed twice"],
    ),
    ("- just\n- a list\n", ["expected a mapping"]),
]


@pytest.mark.parametrize(("text", "fragments"), BAD_FILES)
def test_validation_errors_name_line_and_bucket(tmp_path, text, fragments):
    with pytest.raises(ConfigError) as info:
        load_taxonomy(_write(tmp_path, text))
    message = str(info.value)
    assert str(tmp_path / "t.yaml") in message
    for fragment in fragments:
        assert fragment in message


def test_missing_file_says_what_to_do(tmp_path):
    with pytest.raises(ConfigError, match="taskclf taxonomy init"):
        load_taxonomy(tmp_path / "nope.yaml")


def test_save_refuses_to_overwrite(tmp_path):
    path = save_taxonomy(default_taxonomy(), tmp_path / "t.yaml")
    custom = TaxonomyConfig(buckets=(TaxonomyBucket(name="All", labels=LABEL_SET_V1),))
    with pytest.raises(ConfigError, match="--force"):
        save_taxonomy(custom, path)
    save_taxonomy(custom, path, overwrite=True)
    assert load_taxonomy(path) == custom
    assert taxonomy_to_yaml(custom) == path.read_text(encoding="utf-8")


PROBS = arrays(
    np.float64,
    st.tuples(st.integers(1, 6), st.just(len(LABEL_SET_V1))),
    elements=st.floats(0.0, 1.0, allow_nan=False),
)


def _custom(aggregation: str, weights: tuple[float, ...]) -> TaxonomyConfig:
    """Code + Talk; a third weight adds an explicit, label-less Other bucket."""
    buckets = [
        TaxonomyBucket(name="Code", labels=("Build", "Debug", "Review"), weight=weights[0]),
        TaxonomyBucket(name="Talk", labels=("Communicate", "Meet"), weight=weights[1]),
    ]
    if len(weights) > 2:
        buckets.append(TaxonomyBucket(name=OTHER_BUCKET, weight=weights[2]))
    return TaxonomyConfig(aggregation=aggregation, buckets=tuple(buckets))


@settings(max_examples=50, deadline=None)
@given(
    probs=PROBS,
    aggregation=st.sampled_from(["sum", "max"]),
    weights=st.tuples(st.floats(0.1, 10.0), st.floats(0.1, 10.0), st.floats(0.1, 10.0)),
)
def test_bucket_probabilities_properties(probs, aggregation, weights):
    tax = _custom(aggregation, weights)
    out = bucket_probabilities(probs, tax)
    assert out.shape == (probs.shape[0], 3)  # Code, Talk, implicit Other
    assert np.all(out >= 0)
    np.testing.assert_allclose(out.sum(axis=1), 1.0)
    # Scaling every weight by the same factor changes nothing (renormalized).
    scaled = _custom(aggregation, tuple(w * 3 for w in weights))
    np.testing.assert_allclose(bucket_probabilities(probs, scaled), out, atol=1e-12)
    # Single rows behave like one-row matrices.
    np.testing.assert_allclose(bucket_probabilities(probs[0], tax), out[0])


@settings(max_examples=50, deadline=None)
@given(probs=PROBS)
def test_sum_aggregation_with_unit_weights_adds_member_probabilities(probs):
    probs = probs + 1e-3
    probs = probs / probs.sum(axis=1, keepdims=True)
    tax = _custom("sum", (1.0, 1.0))
    out = bucket_probabilities(probs, tax)
    idx = {label: i for i, label in enumerate(LABEL_SET_V1)}
    code = probs[:, [idx["Build"], idx["Debug"], idx["Review"]]].sum(axis=1)
    np.testing.assert_allclose(out[:, 0], code)


@settings(max_examples=50, deadline=None)
@given(probs=PROBS)
def test_max_aggregation_top_bucket_holds_top_label(probs):
    tax = _custom("max", (1.0, 1.0))
    out = bucket_probabilities(probs, tax)
    names = tax.bucket_names()
    for row, bucket_row in zip(probs, out, strict=True):
        top2 = np.sort(row)[-2:]
        # a top label within a few ulps of the runner-up is a tie after renormalization
        if row.max() <= 0 or top2[1] - top2[0] <= 1e-12 * top2[1]:
            continue
        top_label = LABEL_SET_V1[int(np.argmax(row))]
        assert names[int(np.argmax(bucket_row))] == tax.label_to_bucket[top_label]


def test_weights_shift_probability():
    probs = np.full(len(LABEL_SET_V1), 1 / len(LABEL_SET_V1))
    light = bucket_probabilities(probs, _custom("sum", (1.0, 1.0)))
    heavy = bucket_probabilities(probs, _custom("sum", (4.0, 1.0)))
    assert heavy[0] > light[0] and heavy[1] < light[1]
    np.testing.assert_allclose(light, [3 / 8, 2 / 8, 3 / 8])


def test_bucket_probabilities_edge_cases():
    tax = default_taxonomy()
    zero = bucket_probabilities(np.zeros((1, len(LABEL_SET_V1))), tax)
    np.testing.assert_allclose(zero, [[0.25] * 4])
    with pytest.raises(InputError, match="shape"):
        bucket_probabilities(np.ones((2, 3)), tax)
    bad = np.full((2, len(LABEL_SET_V1)), 0.125)
    bad[1, 2] = -0.1
    with pytest.raises(InputError, match="row 1"):
        bucket_probabilities(bad, tax)


def test_cli_init_validate_show(tmp_path, capsys):
    home = str(tmp_path / "home")
    assert run(["--home", home, "taxonomy", "show"]) == 0
    assert "built-in default" in capsys.readouterr().out
    assert run(["--home", home, "taxonomy", "init"]) == 0
    written = tmp_path / "home" / "configs" / "taxonomy.yaml"
    assert written.read_bytes() == (GOLDEN / "taxonomy_default_v1.yaml").read_bytes()
    capsys.readouterr()
    assert run(["--home", home, "taxonomy", "init"]) == 2
    assert "--force" in capsys.readouterr().err
    assert run(["--home", home, "taxonomy", "init", "--force"]) == 0
    assert run(["--home", home, "taxonomy", "validate"]) == 0
    assert "ok" in capsys.readouterr().out
    bad = _write(tmp_path, BAD_FILES[0][0])
    assert run(["--home", home, "taxonomy", "validate", "--file", str(bad)]) == 2
    assert "unknown core label 'Bild'" in capsys.readouterr().err
    custom = str(GOLDEN / "taxonomy_custom_v1.yaml")
    assert run(["--home", home, "taxonomy", "show", "--file", custom]) == 0
    out = capsys.readouterr().out
    assert "Coding" in out and "Unsure" in out
