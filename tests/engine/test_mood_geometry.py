"""The mood space's smoothers (engine/_moodgeometry.py): the blurring mean shift, the non-blurring shift over
the catalog, and the field that follows the shift's first pass."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from engine._moodgeometry import INTERPOLATE, blur, field, shift


def two_clouds() -> np.ndarray:
    rng = np.random.default_rng(3)
    points = np.vstack([rng.normal(size=(500, 2)) * 0.3, rng.normal(size=(500, 2)) * 0.3 + [4.0, 0.0]])
    return points.astype(np.float32)


def test_blur_contracts_each_cloud_toward_its_mode_and_is_deterministic() -> None:
    from scipy.spatial import cKDTree

    points = two_clouds()
    smoothed = blur(points, 30, 3)
    assert smoothed.shape == points.shape and smoothed.dtype == np.float32

    def density_radius(x: np.ndarray) -> float:  # median distance to the 10th nearest neighbour
        return float(np.median(cKDTree(x).query(x, k=11)[0][:, -1]))

    assert density_radius(smoothed) < 0.5 * density_radius(points)  # denser: contracted toward the modes
    for part in (slice(0, 500), slice(500, 1000)):
        np.testing.assert_allclose(smoothed[part].mean(axis=0), points[part].mean(axis=0), atol=0.1)  # in place
    np.testing.assert_array_equal(smoothed, blur(points, 30, 3))
    np.testing.assert_array_equal(blur(points, 30, 0), points)


def assert_climbs_to_the_modes(smooth: Callable[[np.ndarray, int, int], np.ndarray], points: np.ndarray) -> None:
    """Each point of ``two_clouds`` stays inside its cloud's hull and climbs to its mode, the same every run."""
    smoothed = smooth(points, 30, 8)
    for part, centre in ((slice(0, 500), [0.0, 0.0]), (slice(500, 1000), [4.0, 0.0])):
        assert np.abs(smoothed[part] - centre).max() < 0.5
        assert smoothed[part].std(axis=0).max() < 0.75 * points[part].std(axis=0).min()  # contracted
    np.testing.assert_array_equal(smoothed, smooth(points, 30, 8))  # deterministic
    np.testing.assert_array_equal(smooth(points, 30, 0), points)


def test_the_non_blurring_shift_climbs_toward_the_modes_of_a_catalog_that_stays_put() -> None:
    points = two_clouds()
    # one pass: every point goes to the mean of its 30 nearest catalog points (brute force here)
    d2 = ((points[:, None, :].astype(np.float64) - points[None, :, :]) ** 2).sum(axis=2)
    expected = points.astype(np.float64)[np.argsort(d2, axis=1, kind="stable")[:, :30]].mean(axis=1)
    np.testing.assert_allclose(shift(points, 30, 1), expected, atol=1e-5)
    # the second pass still averages the catalog's points, not the moved ones (the blur would)
    d2 = ((expected[:, None, :] - points[None, :, :].astype(np.float64)) ** 2).sum(axis=2)
    second = points.astype(np.float64)[np.argsort(d2, axis=1, kind="stable")[:, :30]].mean(axis=1)
    np.testing.assert_allclose(shift(points, 30, 2), second, atol=1e-5)
    assert np.abs(blur(points, 30, 2) - second).max() > 1e-3
    assert_climbs_to_the_modes(shift, points)  # more passes keep averaging the *catalog*


def test_the_field_takes_the_shifts_first_pass_then_follows_its_means() -> None:
    points = two_clouds()
    first = shift(points, 30, 1)
    np.testing.assert_array_equal(field(points, 30, 1), first)  # the first pass is the shift's, exactly
    # the second: the mean of the first pass's points of the INTERPOLATE nearest catalog points (brute force)
    d2 = ((first[:, None, :].astype(np.float64) - points[None, :, :]) ** 2).sum(axis=2)
    expected = first.astype(np.float64)[np.argsort(d2, axis=1, kind="stable")[:, :INTERPOLATE]].mean(axis=1)
    np.testing.assert_allclose(field(points, 30, 2), expected, atol=1e-5)
    assert np.abs(shift(points, 30, 2) - expected).max() > 1e-3  # not the shift's second pass
    assert_climbs_to_the_modes(field, points)
