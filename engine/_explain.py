"""Per-feature contributions for multi-class XGBoost trees, whichever ``multi_strategy`` built them.

XGBoost 3.2 does not implement ``pred_contribs`` for vector-leaf (``multi_output_tree``) models, so
this computes path attributions (Saabas; XGBoost's own ``approx_contribs`` method) from the model's
JSON: every node gets the hessian-weighted mean of the leaf values below it, and each split on the
path of a row credits its feature with the change in that mean for the explained class. The
contributions plus the bias equal the row's margin for that class exactly.

``one_output_per_tree`` models (scalar leaves, one tree per class per round; tree ``i`` adds to
class ``tree_info[i]``) go through the same code, a scalar tree being a one-column vector tree that
counts for its own class only. XGBoost's ``pred_contribs(approx_contribs=True)`` would give the same
numbers for them, but as a second code path that needs a DMatrix per call.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from ._ubjson import as_printed


@dataclasses.dataclass(frozen=True)
class _Tree:
    left: np.ndarray
    right: np.ndarray
    feature: np.ndarray
    threshold: np.ndarray  # float32: XGBoost splits compare float32 values
    default_left: np.ndarray
    node_mean: np.ndarray  # (n_nodes, n_classes) for a vector-leaf tree, (n_nodes, 1) for a scalar one
    target: int  # the class a scalar-leaf tree adds to; -1: a vector-leaf tree adds to every class


class PathExplainer:
    """Explains a multi-class softprob booster from its document (engine/_ubjson.py); ``explain(x, cls)`` ->
    (bias, contributions). Its float arithmetic is float64 on the numbers as the model's JSON prints them
    (``as_printed``)."""

    def __init__(self, model: dict[str, Any]) -> None:
        learner = model["learner"]
        self.n_features = int(learner["learner_model_param"]["num_feature"])
        base = learner["learner_model_param"]["base_score"].strip("[]").split(",")
        self.base_margin = np.array([float(b) for b in base], dtype=np.float64)
        gbtree = learner["gradient_booster"]["model"]
        self.trees = [self._parse(t, len(self.base_margin), int(target))
                      for t, target in zip(gbtree["trees"], gbtree["tree_info"], strict=True)]
        # per class, the trees adding to its margin and the column of theirs to read: every
        # vector-leaf tree (column = the class), or that class's own scalar trees (column 0)
        self._walks: list[list[tuple[_Tree, int]]] = [[] for _ in self.base_margin]
        for t in self.trees:
            if t.target == -1:
                for cls, walk in enumerate(self._walks):
                    walk.append((t, cls))
            else:
                self._walks[t.target].append((t, 0))

    @staticmethod
    def _parse(tree: dict, n_classes: int, target: int) -> _Tree:
        left = np.array(tree["left_children"], dtype=np.int64)
        right = np.array(tree["right_children"], dtype=np.int64)
        hess = as_printed(tree["sum_hessian"])
        vector = "leaf_weights" in tree
        if vector:  # multi_output_tree: at a leaf, right_children holds the index of its vector
            leaves = as_printed(tree["leaf_weights"]).reshape(-1, n_classes)
            leaf_rows = right
        else:  # one_output_per_tree: a leaf's value is in split_conditions (see engine/_forest.py)
            leaves = np.array(tree["split_conditions"], dtype=np.float32).astype(np.float64).reshape(-1, 1)
            leaf_rows = np.arange(len(left))
        mean = np.zeros((len(left), leaves.shape[1]))
        # children always have larger ids than their parent, so a reverse sweep is bottom-up
        for node in range(len(left) - 1, -1, -1):
            if left[node] == -1:
                mean[node] = leaves[leaf_rows[node]]
            else:
                a, b = left[node], right[node]
                total = hess[a] + hess[b]
                mean[node] = (hess[a] * mean[a] + hess[b] * mean[b]) / total if total > 0 else \
                    (mean[a] + mean[b]) / 2
        return _Tree(left=left, right=right, feature=np.array(tree["split_indices"], dtype=np.int64),
                     threshold=np.array(tree["split_conditions"], dtype=np.float32),
                     default_left=np.array(tree["default_left"], dtype=bool), node_mean=mean,
                     target=-1 if vector else target)

    def explain(self, x: np.ndarray, cls: int) -> tuple[float, np.ndarray]:
        """Bias and per-feature contributions (shape (n_features,)) to class ``cls``'s margin for
        one row ``x`` of shape (n_features,)."""
        x = np.asarray(x, dtype=np.float32)
        contrib = np.zeros(self.n_features)
        bias = float(self.base_margin[cls])
        for t, col in self._walks[cls]:
            node = 0
            bias += t.node_mean[0, col]
            while t.left[node] != -1:
                v = x[t.feature[node]]
                go_left = t.default_left[node] if np.isnan(v) else v < t.threshold[node]
                child = t.left[node] if go_left else t.right[node]
                contrib[t.feature[node]] += t.node_mean[child, col] - t.node_mean[node, col]
                node = child
        return bias, contrib
