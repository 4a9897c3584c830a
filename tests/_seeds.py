"""Feature seeds near a catalog track, as a client would send them: within the bundle's value rules.

A feature query meets the catalog's rules (schema.rules: valence 0..1, key 0..11, tempo > 0, ...), so a
track's features scaled or jittered for a test are brought back inside them (engine/_view.py refuses a value a
"drop" rule forbids)."""

from __future__ import annotations

import numpy as np

from engine import Recommender


def within_rules(rec: Recommender, values: np.ndarray) -> dict[str, float]:
    """A raw feature row (n_features,) as a seed's mapping, each ruled feature clipped into its rule."""
    out = dict(zip(rec.feature_names, np.asarray(values, dtype=np.float64).tolist(), strict=True))
    for col, rule in (rec.bundle.config.schema.rules or {}).items():
        if col in out:
            low = rule.min if rule.min is None or not rule.exclusive_min else float(np.nextafter(rule.min, np.inf))
            out[col] = float(np.clip(out[col], -np.inf if low is None else low, np.inf if rule.max is None else rule.max))
    return out


def near(rec: Recommender, row: int, scale: float = 1.0) -> dict[str, float]:
    """Catalog track ``row``'s features times ``scale``, within the rules."""
    return within_rules(rec, rec.bundle.tracks.features[row] * scale)
