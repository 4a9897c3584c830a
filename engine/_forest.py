"""XGBoost's trees as numpy arrays, evaluated for a few rows without XGBoost's per-call cost.

A single-row ``inplace_predict`` spends most of its time outside the trees (argument checks, the
array interface, thread hand-off): on the Spotify model it dominates the new-track path (see
benchmarks/new_track_path.py). Here every tree is padded into one array per field and a batch of
rows descends all trees level by level, so a prediction is a few dozen numpy operations whatever
the number of trees. The same booster gives the same decisions: splits compare float32 values
with float32 thresholds (``x < threshold`` goes left, a missing value takes the default branch),
and leaf values are summed in float32 (in another order than XGBoost's, so margins agree to about
1e-6, not bit for bit), then ``softprob``.
Both ``multi_output_tree`` (vector leaves) and ``one_output_per_tree`` (one class per tree)
models are read from the model's document (its JSON, read from the model file without XGBoost:
engine/_ubjson.py); nothing is executed from the model.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from . import _compiled


class CompiledForest:
    """A multi-class softprob booster's document (engine/_ubjson.py) as arrays; ``predict_proba(x)`` of shape
    (n, n_classes)."""

    def __init__(self, model: dict[str, Any]) -> None:
        learner = model["learner"]
        self.n_features = int(learner["learner_model_param"]["num_feature"])
        base = learner["learner_model_param"]["base_score"].strip("[]").split(",")
        n_classes = int(learner["learner_model_param"].get("num_class", len(base))) or len(base)
        self.n_classes = n_classes
        base_values = np.array([float(b) for b in base], dtype=np.float32)
        self.base_margin = np.broadcast_to(base_values, (n_classes,)).astype(np.float32)
        gbtree = learner["gradient_booster"]["model"]
        trees, targets = gbtree["trees"], [int(t) for t in gbtree["tree_info"]]
        width = max(len(t["left_children"]) for t in trees) if trees else 1
        n = len(trees)
        self.left = np.full((n, width), -1, dtype=np.int32)
        self.right = np.full((n, width), -1, dtype=np.int32)
        self.feature = np.zeros((n, width), dtype=np.int32)
        self.threshold = np.zeros((n, width), dtype=np.float32)
        self.default_left = np.zeros((n, width), dtype=bool)
        self.vector_leaves = bool(trees) and "leaf_weights" in trees[0]
        out = n_classes if self.vector_leaves else 1
        self.leaf_value = np.zeros((n, width, out), dtype=np.float32)
        self.target = np.asarray(targets, dtype=np.int64)
        depth = 0
        for i, tree in enumerate(trees):
            left = np.asarray(tree["left_children"], dtype=np.int32)
            right = np.asarray(tree["right_children"], dtype=np.int32)
            m = len(left)
            self.left[i, :m], self.right[i, :m] = left, right
            self.feature[i, :m] = tree["split_indices"]
            self.threshold[i, :m] = np.asarray(tree["split_conditions"], dtype=np.float32)
            self.default_left[i, :m] = np.asarray(tree["default_left"], dtype=bool)
            leaf = left == -1
            if self.vector_leaves:  # at a leaf, right_children holds the row of its leaf vector
                weights = np.asarray(tree["leaf_weights"], dtype=np.float32).reshape(-1, n_classes)
                self.leaf_value[i, np.flatnonzero(leaf)] = weights[right[leaf]]
                self.right[i, :m][leaf] = -1
            else:  # a leaf's value is in split_conditions, the learning rate applied; base_weights is a node
                # statistic that equals it only for leaves a split made (a tree pruned back to its root differs)
                self.leaf_value[i, np.flatnonzero(leaf), 0] = self.threshold[i, :m][leaf]
            depth = max(depth, _depth(left, right))
        self.depth = depth
        # scalar trees grouped by the class they add to (stable: tree order within a class)
        self._by_class = np.argsort(self.target, kind="stable")
        self._classes, self._class_starts = np.unique(self.target[self._by_class], return_index=True)
        # one flat node table over all trees; a leaf's children are itself, so descending a fixed
        # number of levels is safe for shallower branches
        ids = np.arange(n * width, dtype=np.int64).reshape(n, width)
        is_leaf = self.left < 0
        self._flat = {
            "root": ids[:, 0].copy(),
            "feature": self.feature.ravel().astype(np.int64),
            "threshold": self.threshold.ravel(),
            "default_left": self.default_left.ravel(),
            "left": np.where(is_leaf, ids, ids[:, :1] + self.left).ravel(),
            "right": np.where(is_leaf, ids, ids[:, :1] + self.right).ravel(),
            "leaf_value": self.leaf_value.reshape(n * width, -1),
        }

    def predict_margin(self, x: np.ndarray) -> np.ndarray:
        """Margins of shape (n_rows, n_classes) for float32 rows of shape (n_rows, n_features)."""
        x = np.ascontiguousarray(x, dtype=np.float32)
        flat = self._flat
        if len(x) == 1 and self.vector_leaves and _compiled.active():  # the same bits in one call
            return _compiled.kernels().forest_margin(
                x[0], flat["root"], flat["feature"], flat["threshold"], flat["default_left"], flat["left"],
                flat["right"], flat["leaf_value"], self.base_margin, self.depth)[None, :]
        root = flat["root"]
        if len(x) == 1:  # a query's one row (the common call): no per-row offsets to add
            node, row_start = root[None, :], None
        else:
            node = np.repeat(root[None, :], len(x), axis=0)  # flat node ids, one per tree
            row_start = (np.arange(len(x), dtype=np.int64) * x.shape[1])[:, None]
        values = x.ravel()
        missing = bool(np.isnan(values).any())
        for _ in range(self.depth):
            at = flat["feature"].take(node)
            v = values.take(at if row_start is None else row_start + at)
            go_left = v < flat["threshold"].take(node)
            if missing:
                go_left = np.where(np.isnan(v), flat["default_left"].take(node), go_left)
            node = np.where(go_left, flat["left"].take(node), flat["right"].take(node))  # leaves loop to themselves
        leaves = flat["leaf_value"].take(node, axis=0)  # (n_rows, n_trees, out)
        if self.vector_leaves:
            return self.base_margin + leaves.sum(axis=1)
        margin = np.repeat(self.base_margin[None, :], len(x), axis=0)
        # per class, its trees' values summed in tree order (a matmul would round by batch size)
        margin[:, self._classes] += np.add.reduceat(leaves[:, self._by_class, 0], self._class_starts, axis=1)
        return margin

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        margin = self.predict_margin(x)
        e = np.exp(margin - margin.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)


def _depth(left: np.ndarray, right: np.ndarray) -> int:
    """Edges on the longest root-to-leaf path (children have larger ids than their parents)."""
    depth = np.zeros(len(left), dtype=np.int32)
    for node in range(len(left)):
        if left[node] != -1:
            depth[left[node]] = depth[right[node]] = depth[node] + 1
    return int(depth.max(initial=0))
