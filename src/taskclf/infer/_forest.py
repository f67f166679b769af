"""A LightGBM multiclass model evaluated by compiled code, bit for bit as LightGBM does.

The online loop predicts one row a minute. LightGBM's own single-row path (the C API's
prepared ``...SingleRowFast`` call) spends most of its ~30-50 µs walking node arrays spread
over one heap block per tree; :class:`Forest` holds the same trees in a few flat arrays and
walks them in a numba-compiled loop (``core._jit``), about 10 µs for the default model.

It follows LightGBM's prediction exactly (``include/LightGBM/tree.h`` and the dense-row
predictor of the C API, LightGBM 4):

- Input: a value with ``|v| <= kZeroThreshold`` (``1e-35f``) that is not NaN reads as 0.0,
  as the predictor's sparse copy of a dense row does.
- Numerical split (decision type bit 0 clear; missing type in bits 2-3: none, zero, NaN): a
  NaN reads as 0.0 unless the missing type is NaN; a missing value (zero within
  ``kZeroThreshold`` for type zero, NaN for type NaN) goes to the default side (bit 1: left);
  otherwise ``value <= threshold`` goes left.
- Categorical split (bit 0 set): NaN or a negative value goes right; else the integer part
  goes left when its bit is set in the node's bitset.
- Raw score of class ``k``: the sum, from 0.0 in tree order, of the leaf values of trees
  ``i * num_class + k``; then softmax as ``Common::Softmax`` (max, ``exp`` of the
  differences summed in order, divide).

Thresholds and leaf values come from the model text, which LightGBM writes with 17
significant digits, so they parse to the same doubles. A model using anything else (another
objective, linear trees, averaged output) is not taken (:meth:`Forest.from_booster` returns
None), and every model is checked against ``booster.predict`` on probe rows before use.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import lightgbm as lgb
import numpy as np
from numpy.typing import NDArray

from taskclf.core._jit import njit

I64 = NDArray[np.int64]
I32 = NDArray[np.int32]
I16 = NDArray[np.int16]
U8 = NDArray[np.uint8]
F64 = NDArray[np.float64]
U32 = NDArray[np.uint32]
_ZERO = float(np.float32(1e-35))  # LightGBM's kZeroThreshold, a float constant


@njit
def _predict(
    x: F64,
    out: F64,
    roots: I32,
    feature: I32,
    threshold: F64,
    decision: U8,
    left: I32,
    right: I32,
    leaf: F64,
    cat_lo: I32,
    cat_n: I32,
    bits: U32,
    n_class: int,
) -> None:
    """Probabilities of row ``x`` into ``out`` (see the module docstring)."""
    v = np.empty(x.size)
    for j in range(x.size):
        f = x[j]
        v[j] = f if (abs(f) > _ZERO or f != f) else 0.0
    for k in range(n_class):
        out[k] = 0.0
    k = 0
    for t in range(roots.size):
        node = np.int64(roots[t])
        while node >= 0:
            f = v[feature[node]]
            d = decision[node]
            if d & 1:  # categorical
                if f != f:
                    node = right[node]
                    continue
                iv = int(f)
                if iv < 0:
                    node = right[node]
                    continue
                word = iv >> 5
                if word < cat_n[node] and (bits[cat_lo[node] + word] >> (iv & 31)) & 1:
                    node = left[node]
                else:
                    node = right[node]
                continue
            missing = (d >> 2) & 3
            if f != f and missing != 2:
                f = 0.0
            if (missing == 1 and -_ZERO <= f <= _ZERO) or (missing == 2 and f != f):
                node = left[node] if d & 2 else right[node]
            elif f <= threshold[node]:
                node = left[node]
            else:
                node = right[node]
        out[k] += leaf[~node]  # tree t belongs to class t % n_class
        k = k + 1 if k + 1 < n_class else 0
    top = out[0]
    for k in range(1, n_class):
        top = top if out[k] < top else out[k]
    total = 0.0
    for k in range(n_class):
        out[k] = math.exp(out[k] - top)
        total += out[k]
    for k in range(n_class):
        out[k] /= total


def _numbers(text: str, kind: type) -> list:  # type: ignore[type-arg]
    return [kind(v) for v in text.split()]


@dataclass(frozen=True)
class Forest:
    """The trees of a multiclass LightGBM model as flat arrays (see the module docstring).

    Nodes of every tree are numbered together; a child ``c < 0`` is the leaf ``~c`` of the
    shared leaf array; ``roots[t]`` is tree ``t``'s first node, or ``~leaf`` for a tree that
    is one leaf.
    """

    n_class: int
    n_features: int
    roots: I32
    feature: I32
    threshold: F64
    decision: U8
    left: I32
    right: I32
    leaf: F64
    cat_lo: I32
    cat_n: I32
    bits: U32

    @classmethod
    def from_booster(cls, booster: lgb.Booster, num_iteration: int = -1) -> Forest | None:
        """The booster's first ``num_iteration`` iterations (all if <= 0), or None when the
        model uses what :class:`Forest` does not implement, or disagrees on the probes."""
        text = booster.model_to_string(num_iteration=num_iteration if num_iteration > 0 else -1)
        forest = cls.from_model_text(text)
        if forest is None or not forest.agrees_with(booster, num_iteration):
            return None
        return forest

    @classmethod
    def from_model_text(cls, text: str) -> Forest | None:
        head, _, body = text.partition("\nTree=")
        header = dict(line.split("=", 1) for line in head.splitlines() if "=" in line)
        objective = header.get("objective", "").split()
        n_class = int(header.get("num_class", "0"))
        if (
            not objective
            or objective[0] not in ("multiclass", "softmax")
            or int(header.get("num_tree_per_iteration", "0")) != n_class
            or n_class < 2
            or "average_output" in head.splitlines()
        ):
            return None
        trees = ("Tree=" + body).split("\nTree=")
        trees[-1] = trees[-1].split("end of trees")[0]
        nodes: dict[str, list[float] | list[int]] = {
            k: [] for k in ("feature", "threshold", "decision", "left", "right", "lo", "n")
        }
        roots: list[int] = []
        leaf: list[float] = []
        bits: list[int] = []
        for tree in trees:
            kv = dict(line.split("=", 1) for line in tree.splitlines()[1:] if "=" in line)
            if kv.get("is_linear", "0") != "0":
                return None
            if not cls._add_tree(kv, nodes, roots, leaf, bits):
                return None
        if len(leaf) >= 2**31 or not all(0 <= d < 256 for d in nodes["decision"]):
            return None
        # small types: the arrays a prediction walks stay in the CPU caches between minutes
        return cls(
            n_class=n_class,
            n_features=int(header["max_feature_idx"]) + 1,
            roots=np.array(roots, dtype=np.int32),
            feature=np.array(nodes["feature"], dtype=np.int32),
            threshold=np.array(nodes["threshold"], dtype=np.float64),
            decision=np.array(nodes["decision"], dtype=np.uint8),
            left=np.array(nodes["left"], dtype=np.int32),
            right=np.array(nodes["right"], dtype=np.int32),
            leaf=np.array(leaf, dtype=np.float64),
            cat_lo=np.array(nodes["lo"], dtype=np.int32),
            cat_n=np.array(nodes["n"], dtype=np.int32),
            bits=np.array(bits, dtype=np.uint32),
        )

    @staticmethod
    def _add_tree(
        kv: dict[str, str],
        nodes: dict[str, list[float] | list[int]],
        roots: list[int],
        leaf: list[float],
        bits: list[int],
    ) -> bool:
        n_leaves = int(kv["num_leaves"])
        node0, leaf0 = len(nodes["feature"]), len(leaf)
        values = _numbers(kv["leaf_value"], float)
        if len(values) != n_leaves:
            return False
        leaf.extend(values)
        if n_leaves == 1:
            roots.append(~leaf0)
            return True
        roots.append(node0)
        feature = _numbers(kv["split_feature"], int)
        threshold = _numbers(kv["threshold"], float)
        decision = _numbers(kv["decision_type"], int)
        left, right = _numbers(kv["left_child"], int), _numbers(kv["right_child"], int)
        bounds = _numbers(kv.get("cat_boundaries", ""), int)
        bit0 = len(bits)
        bits.extend(_numbers(kv.get("cat_threshold", ""), int))
        for j in range(n_leaves - 1):
            nodes["feature"].append(feature[j])
            nodes["threshold"].append(threshold[j])
            nodes["decision"].append(decision[j])
            for side, child in (("left", left[j]), ("right", right[j])):
                nodes[side].append(node0 + child if child >= 0 else ~(leaf0 + ~child))
            if decision[j] & 1:
                cat = int(threshold[j])
                if cat + 1 >= len(bounds):
                    return False
                nodes["lo"].append(bit0 + bounds[cat])
                nodes["n"].append(bounds[cat + 1] - bounds[cat])
            else:
                nodes["lo"].append(0)
                nodes["n"].append(0)
        return True

    def predict(self, x: F64, out: F64) -> None:
        """Probabilities of one row ``x`` (shape ``(n_features,)`` float64) into ``out``."""
        _predict(
            x, out, self.roots, self.feature, self.threshold, self.decision, self.left,
            self.right, self.leaf, self.cat_lo, self.cat_n, self.bits, self.n_class,
        )  # fmt: skip

    def agrees_with(self, booster: lgb.Booster, num_iteration: int = -1) -> bool:
        """Whether probe rows (the split thresholds, missing values, tiny values, unknown
        categories) get the same bits from :meth:`predict` and ``booster.predict``."""
        rng = np.random.default_rng(0)
        n = self.n_features
        probes = np.zeros((24, n))
        order = np.argsort(self.feature, kind="stable")
        features, first = np.unique(self.feature[order], return_index=True)
        bounds = [*first.tolist(), order.size]
        for j, lo, hi in zip(features.tolist(), bounds[:-1], bounds[1:], strict=True):
            at = order[lo:hi]  # the nodes splitting on feature j
            probes[:, j] = self.threshold[at[rng.integers(at.size, size=probes.shape[0])]]
        probes[1::4] = np.nextafter(probes[1::4], np.inf)
        probes[2::4] = np.where(rng.random((6, n)) < 0.3, np.nan, probes[2::4])
        probes[3::4] = np.where(
            rng.random((6, n)) < 0.3, rng.choice([0.0, -0.0, 1e-40]), probes[3::4]
        )
        want = booster.predict(
            probes, num_iteration=num_iteration if num_iteration > 0 else None, num_threads=1
        )
        got = np.zeros(self.n_class)
        for i in range(probes.shape[0]):
            self.predict(probes[i], got)
            if not np.array_equal(got, np.asarray(want[i], dtype=np.float64)):
                return False
        return True
