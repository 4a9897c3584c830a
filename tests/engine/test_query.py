from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from engine import (
    MAX_K,
    FeatureSchema,
    InvalidQuery,
    Preprocessor,
    Recommender,
    Seed,
    SimilarQuery,
    TrackFilter,
    TrackNotFound,
    load_bundle,
)

# the test bundle's vector dimension: PCA keeps every component by default, so one per transformed feature
DIM = len(Preprocessor(feature_names=FeatureSchema().feature_columns, transforms=FeatureSchema().transforms)
          .transformed_names)


@pytest.fixture(scope="module")
def rec(bundle_dir: Path) -> Recommender:
    return Recommender(load_bundle(bundle_dir))


def ids(rec: Recommender, rows: np.ndarray) -> list[str]:
    return [str(rec.bundle.tracks.ids[r]) for r in rows]


def by_id(tid: str, **kw: object) -> SimilarQuery:
    return SimilarQuery(seeds=[Seed(track_id=tid)], **kw)  # type: ignore[arg-type]


def test_similar_by_id_at_genre_weight_0_is_exact_cosine_and_excludes_the_seed(rec: Recommender) -> None:
    tid = str(rec.bundle.tracks.ids[0])
    res = rec.similar(by_id(tid, k=10, genre_weight=0.0))
    assert tid not in ids(rec, res.rows) and len(res.rows) == 10
    v = rec.bundle.vectors
    brute = np.argsort(-(v @ v[0]))
    brute = [r for r in brute if r != 0][:10]
    assert list(res.rows) == brute
    np.testing.assert_allclose(res.scores, (v[res.rows] @ v[0]), atol=1e-5)
    assert np.all(np.diff(res.scores) <= 1e-6)


def test_seed_forms_agree(rec: Recommender) -> None:
    row = 5
    feats = dict(zip(rec.feature_names, rec.bundle.tracks.features[row], strict=True))
    # pure cosine only: with genre re-ranking a catalog seed uses its out-of-fold probabilities and raw
    # features the shipped model's (tests/engine/test_crossfit.py), so the two may differ by design
    for weight in (0.0,):
        a = rec.similar(SimilarQuery(seeds=[Seed(track_id=str(rec.bundle.tracks.ids[row]))], k=5,
                                     genre_weight=weight))
        b = rec.similar(SimilarQuery(seeds=[Seed(features=feats)], k=6, genre_weight=weight))
        # raw features may find the track itself (not excluded: it is not a catalog seed; first
        # by cosine) and otherwise the same answers
        assert [r for r in b.rows if r != row][:5] == list(a.rows)
        assert weight != 0.0 or b.rows[0] == row
    b = rec.similar(SimilarQuery(seeds=[Seed(features=feats)], k=6, genre_weight=0.0))
    c = rec.similar(SimilarQuery(seeds=[Seed(vector=list(rec.bundle.vectors[row] * 3))], k=6))
    assert list(b.rows) == list(c.rows)  # a bare vector has no features to classify: cosine only


def test_genre_explicit_range_and_mood_filters(rec: Recommender) -> None:
    tid = str(rec.bundle.tracks.ids[0])
    f = TrackFilter(include_genres=["jazz", "folk"], exclude_genres=["pop"], explicit=False,
                    ranges={"tempo": (90.0, 130.0)}, mood_ids=[0, 1, 2])
    res = rec.similar(by_id(tid, k=20, filter=f))
    assert len(res.rows) > 0 and res.filtered > 0
    for row in res.rows:
        t = rec.track_record(int(row))
        assert set(t["genres"]) & {"jazz", "folk"} and "pop" not in t["genres"]
        assert t["explicit"] is False and 90 <= t["features"]["tempo"] <= 130 and t["mood_id"] in (0, 1, 2)


def test_too_strict_filters_return_fewer_and_say_so(rec: Recommender) -> None:
    tid = str(rec.bundle.tracks.ids[0])
    res = rec.similar(by_id(tid, k=50, filter=TrackFilter(ranges={"tempo": (150.0, 151.0)})))
    assert res.exhausted and len(res.rows) < 50
    expected = int(((rec.bundle.tracks.features[:, rec.feature_names.index("tempo")] >= 150)
                    & (rec.bundle.tracks.features[:, rec.feature_names.index("tempo")] <= 151)).sum())
    assert len(res.rows) == expected - (1 if 150 <= rec.bundle.tracks.features[0, rec.feature_names.index("tempo")] <= 151 else 0)


def test_paging_with_offset_continues_the_ranking(rec: Recommender) -> None:
    tid = str(rec.bundle.tracks.ids[3])
    full = rec.similar(by_id(tid, k=30))
    page2 = rec.similar(by_id(tid, k=10, offset=10))
    assert list(page2.rows) == list(full.rows[10:20])


def test_artist_cap_and_diversity(rec: Recommender) -> None:
    tid = str(rec.bundle.tracks.ids[0])
    capped = rec.similar(by_id(tid, k=20, max_per_artist=1))
    artists = [rec.track_record(int(r))["artists"][0] for r in capped.rows]
    assert len(set(artists)) == len(artists)
    plain = rec.similar(by_id(tid, k=10))
    diverse = rec.similar(by_id(tid, k=10, diversity=0.7))
    v = rec.bundle.vectors

    def spread(rows: np.ndarray) -> float:
        sims = v[rows] @ v[rows].T
        return float(sims[np.triu_indices(len(rows), 1)].mean())

    assert spread(diverse.rows) < spread(plain.rows)


def test_targets_pull_results_toward_them(rec: Recommender) -> None:
    tid = str(rec.bundle.tracks.ids[0])
    e = rec.feature_names.index("energy")
    plain = rec.similar(by_id(tid, k=10))
    pulled = rec.similar(by_id(tid, k=10, targets={"energy": 0.95}, target_weight=0.8))
    energy = rec.bundle.tracks.features[:, e]
    assert energy[pulled.rows].mean() > energy[plain.rows].mean()


def test_a_target_too_far_outside_the_catalog_to_move_anything_is_refused(rec: Recommender) -> None:
    # every track's closeness to energy = 100 is 0: accepted, the target would be silently ignored
    tid = str(rec.bundle.tracks.ids[0])
    for far in (100.0, -100.0, 1e308):
        with pytest.raises(InvalidQuery, match=r"targets\['energy'\].*too far outside the catalog"):
            rec.similar(by_id(tid, k=5, targets={"energy": far}))
    lo, hi = rec.view.value_range["energy"]
    spread = rec.view.spread["energy"]
    for near in (hi, hi + 0.99 * spread, lo - 0.99 * spread):  # still closer to some tracks than to others
        rec.similar(by_id(tid, k=5, targets={"energy": near}))
    with pytest.raises(InvalidQuery, match="too far outside"):
        rec.similar(by_id(tid, k=5, targets={"energy": hi + spread}))


def test_negative_seeds_push_away(rec: Recommender) -> None:
    v = rec.bundle.vectors
    a, b = 0, int(np.argmax(v @ v[0] < 0.2))
    plain = rec.similar(SimilarQuery(seeds=[Seed(track_id=str(rec.bundle.tracks.ids[a]))], k=10))
    pushed = rec.similar(SimilarQuery(seeds=[Seed(track_id=str(rec.bundle.tracks.ids[a]))],
                                      negative_seeds=[Seed(track_id=str(rec.bundle.tracks.ids[b]))], k=10))
    assert (v[pushed.rows] @ v[b]).mean() < (v[plain.rows] @ v[b]).mean()


def test_batch_equals_single_queries(rec: Recommender) -> None:
    queries = [by_id(str(rec.bundle.tracks.ids[i]), k=7, filter=TrackFilter(include_genres=["metal"]) if i % 2 else
                     TrackFilter()) for i in range(6)]
    batch = rec.similar_batch(queries)
    for q, got in zip(queries, batch, strict=True):
        single = rec.similar(q)
        assert list(got.rows) == list(single.rows)
        np.testing.assert_allclose(got.scores, single.scores)


def test_a_batch_names_the_query_whose_own_bounds_are_broken(rec: Recommender) -> None:
    """One query's k over MAX_K was reported as the batch's sum of offset + k, naming no query."""
    tid = str(rec.bundle.tracks.ids[0])
    with pytest.raises(InvalidQuery) as err:
        rec.similar_batch([by_id(tid), by_id(tid, k=5000)])
    assert str(err.value) == f"queries[1].k: must be 1..{MAX_K}, got 5000"
    with pytest.raises(InvalidQuery, match=r"^queries\[0\]\.offset: must be 0\.\.1990 "):
        rec.similar_batch([by_id(tid, offset=4000)])
    # queries each within their own bounds whose sum is over the batch's: the batch's error, as before
    with pytest.raises(InvalidQuery, match=r"^queries: offset \+ k add up to 6000 over the batch, at most 5000"):
        rec.similar_batch([by_id(tid, k=MAX_K)] * 6)


def test_unknown_seeds(rec: Recommender) -> None:
    tid = str(rec.bundle.tracks.ids[0])
    with pytest.raises(TrackNotFound, match="'nope'"):
        rec.similar(SimilarQuery(seeds=[Seed(track_id=tid), Seed(track_id="nope")]))
    res = rec.similar(SimilarQuery(seeds=[Seed(track_id=tid), Seed(track_id="nope")], skip_unknown_seeds=True))
    assert res.unknown_seed_ids == ["nope"] and len(res.rows) == 10


@pytest.mark.parametrize(
    ("query", "message"),
    [
        (SimilarQuery(seeds=[]), "at least one seed"),
        (SimilarQuery(seeds=[Seed(track_id="x")], k=0), "k: must be 1.."),
        (SimilarQuery(seeds=[Seed(track_id="x")], k=MAX_K + 1), "k: must be 1.."),
        (SimilarQuery(seeds=[Seed(vector=[1.0, 2.0])]), "has 2 values, but the bundle's vectors have"),
        (SimilarQuery(seeds=[Seed(vector=[0.0] * DIM)]), "zero vector"),
        (SimilarQuery(seeds=[Seed(vector=[float("nan")] * DIM)]), "finite"),
        (SimilarQuery(seeds=[Seed(features={"energy": 0.5})]), "missing feature"),
        (SimilarQuery(seeds=[Seed(features={"loudnes": 0.5})]), "unknown feature"),
        (SimilarQuery(seeds=[Seed()]), "exactly one of"),
        (SimilarQuery(seeds=[Seed(vector=[1.0] * DIM)], filter=TrackFilter(include_genres=["polka"])), "unknown genre"),
        (SimilarQuery(seeds=[Seed(vector=[1.0] * DIM)], filter=TrackFilter(include_genres=["JAZZ"])),
         "unknown genre.*'JAZZ'; did you mean 'jazz'\\?"),
        (SimilarQuery(seeds=[Seed(vector=[1.0] * DIM)], filter=TrackFilter(ranges={"tempo": (5.0, 1.0)})), "min <= max"),
        (SimilarQuery(seeds=[Seed(vector=[1.0] * DIM)], targets={"energy": float("inf")}), "finite"),
        (SimilarQuery(seeds=[Seed(vector=[1.0] * DIM)], diversity=2.0), "diversity"),
        (SimilarQuery(seeds=[Seed(features={"energy": 0.5})], negative_seeds=[Seed(features={"energy": 0.5})]),
         r"negative_seeds\[0\]\.features: the same values are also a seed's"),
        # no track could pass: the answer was an empty page, "exhausted"
        (SimilarQuery(seeds=[Seed(vector=[1.0] * DIM)], filter=TrackFilter(include_genres=["jazz", "pop"],
                                                                            exclude_genres=["jazz"])),
         "filter: 'jazz' is both in include_genres and in exclude_genres"),
        # the seed was taken at half weight off itself, and the answer was the one without the negative seed
        (SimilarQuery(seeds=[Seed(track_id="x"), Seed(track_id="y")], negative_seeds=[Seed(track_id="x")]),
         "negative_seeds: 'x' is also among the seeds: give a track as one or the other"),
    ],
)
def test_invalid_queries_name_the_field(rec: Recommender, query: SimilarQuery, message: str) -> None:
    with pytest.raises(InvalidQuery, match=message):
        rec.similar(query)


def test_mood_playlist(rec: Recommender) -> None:
    mood_id, entries = rec.playlist(mood_id=1, length=15, max_per_artist=1)
    got = list(entries)
    assert mood_id == 1 and len(got) == 15
    rows = [e.row for e in got]
    assert len(set(rows)) == 15
    assert all(rec.track_record(r)["mood_id"] == 1 for r in rows)
    artists = [rec.track_record(r)["artists"][0] for r in rows]
    assert len(set(artists)) == 15
    # smooth: the greedy order's steps are smaller than a random order's on average
    space = rec._playlists._space[rows]
    steps = np.linalg.norm(np.diff(space, axis=0), axis=1).mean()
    rng = np.random.default_rng(0)
    random_steps = np.mean([np.linalg.norm(np.diff(space[rng.permutation(15)], axis=0), axis=1).mean()
                            for _ in range(20)])
    assert steps < random_steps


def test_playlist_sources_and_shuffle(rec: Recommender) -> None:
    name = rec.moods()[2]["name"]
    assert rec.playlist(mood_name=name.upper(), length=5)[0] == 2
    seed = str(rec.bundle.tracks.ids[10])
    mood, entries = rec.playlist(seed_track_id=seed, length=5)
    first = next(entries)
    assert mood == rec.track_record(10)["mood_id"] and first.row == 10 and first.transition == 0
    a = [e.row for e in rec.playlist(mood_id=0, length=10, shuffle_seed=7)[1]]
    b = [e.row for e in rec.playlist(mood_id=0, length=10, shuffle_seed=7)[1]]
    c = [e.row for e in rec.playlist(mood_id=0, length=10, shuffle_seed=8)[1]]
    assert a == b and set(a) != set(c)
    mood, entries = rec.playlist(target=(0.9, 0.9), length=5)
    centroid = rec.moods()[mood]["centroid"]
    assert centroid["valence"] > 0.5 and centroid["energy"] > 0.5
    with pytest.raises(InvalidQuery, match="unknown mood"):
        rec.playlist(mood_name="no such mood")
    with pytest.raises(InvalidQuery, match="exactly one of"):
        rec.playlist(mood_id=1, mood_name="x")


def test_classify_with_explanation(rec: Recommender) -> None:
    tid = str(rec.bundle.tracks.ids[0])
    c = rec.classify(track_id=tid, top_k=3, explain=True)
    assert len(c.genres) == 3 and c.known_genres
    assert c.genres[0][1] >= c.genres[1][1] >= c.genres[2][1]
    margin = rec.bundle.classifier.booster_.inplace_predict(  # type: ignore[union-attr]
        rec.bundle.preprocessor.transform_features(rec.bundle.tracks.features[:1]).astype(np.float32),
        predict_type="margin")[0]
    top = rec.genre_names.index(c.genres[0][0])
    assert c.bias + sum(v for _, v in c.contributions) == pytest.approx(float(margin[top]), abs=1e-4)
    # by id, the probabilities a fold model gave the track without seeing it (as by-id re-ranking uses them);
    # by features, the shipped model's, which was trained on it and is surer
    held_out = rec.bundle.genre_proba[0]  # type: ignore[index]
    assert [p for _, p in c.genres] == pytest.approx(sorted(held_out.tolist(), reverse=True)[:3], abs=1e-3)
    feats = dict(zip(rec.feature_names, rec.bundle.tracks.features[0], strict=True))
    shipped = rec.classify(features=feats, top_k=3).genres
    assert shipped != c.genres
    # families: the synthetic genres are all in the family table; each family sums its genres
    assert len(c.families) == 3 and [p for _, p in c.families] == sorted((p for _, p in c.families), reverse=True)
    full = rec.classify(track_id=tid, top_k=len(rec.genre_names))
    genres, families = dict(full.genres), dict(full.families)
    assert families["jazz & blues"] == pytest.approx(genres["jazz"], abs=1e-6)
    assert families["electronic"] == pytest.approx(genres["dance"] + genres["edm"], abs=1e-6)
    assert sum(families.values()) == pytest.approx(1.0, abs=1e-5)
    with pytest.raises(InvalidQuery, match="top_k"):
        rec.classify(track_id=tid, top_k=1000)


def test_genre_weight_reranks_the_cosine_candidates_by_genre_agreement(rec: Recommender) -> None:
    assert rec.default_genre_weight > 0 and rec.bundle.neighbours.genre_weight == rec.default_genre_weight
    v, tracks = rec.bundle.vectors, rec.bundle.tracks
    truth = tracks.genre_matrix()
    proba = rec.bundle.genre_proba  # a catalog seed's out-of-fold probabilities (engine/_crossfit.py)
    assert proba is not None
    gains = []
    for row in range(0, 400, 23):
        for w in (0.3, 1.0):
            res = rec.similar(by_id(rec.ids[row], k=10, genre_weight=w))
            # by hand: the 200 nearest others by cosine, scored (1-w) cos + w P(query in candidate's genres)
            cos = v @ v[row]
            cand = [r for r in np.argsort(-cos, kind="stable") if r != row][:rec.bundle.config.similar.candidates]
            agree = np.minimum((proba[row][None, :] * truth[cand]).sum(axis=1), 1.0)
            score = (1 - w) * cos[cand] + w * agree
            expected = np.asarray(cand)[np.argsort(-score, kind="stable")][:10]
            np.testing.assert_allclose(np.sort(res.scores)[::-1], np.sort(score)[::-1][:10], rtol=1e-4, atol=1e-5)
            assert set(res.rows) == set(expected), (row, w)
        plain = rec.similar(by_id(rec.ids[row], k=10, genre_weight=0.0))
        gains.append(truth[res.rows][:, truth[row]].any(axis=1).mean() - truth[plain.rows][:, truth[row]].any(axis=1).mean())
    assert np.mean(gains) > 0  # the planted genres are learnable: agreement finds more of them


def test_genre_weight_is_validated(rec: Recommender) -> None:
    for bad in (-0.1, 1.5, float("nan")):
        with pytest.raises(InvalidQuery, match=r"genre_weight: must be 0\.\.1"):
            rec.similar(by_id(rec.ids[0], genre_weight=bad))
    # a vector carries no genre probabilities: the weight given did nothing, and the answer was cosine's
    vector = Seed(vector=rec.bundle.vectors[3].tolist())
    for seeds, found in (([vector], ""), ([vector, Seed(track_id="no such id")], " found")):
        with pytest.raises(InvalidQuery, match=f"^genre_weight: 0.3 given, but the seeds{found} are vectors only"):
            rec.similar(SimilarQuery(seeds=seeds, genre_weight=0.3, skip_unknown_seeds=True))
    cosine = rec.similar(SimilarQuery(seeds=[vector], genre_weight=0.0))  # 0 or unset: what such seeds rank by
    assert cosine.rows.tolist() == rec.similar(SimilarQuery(seeds=[vector])).rows.tolist()


def test_neighbour_table_and_index_give_the_same_answers(rec: Recommender) -> None:
    import dataclasses

    assert rec.bundle.neighbours is not None
    plain = Recommender(dataclasses.replace(rec.bundle, neighbours=None))
    filters = [TrackFilter(), TrackFilter(include_genres=["jazz"]), TrackFilter(ranges={"tempo": (100.0, 120.0)}),
               TrackFilter(exclude_genres=["pop", "dance"], explicit=False)]
    for i in range(0, 3000, 97):
        for f, cap, offset in [(TrackFilter(), 0, 0), (TrackFilter(), 0, 5), *[(f, 2, 0) for f in filters]]:
            q = SimilarQuery(seeds=[Seed(track_id=rec.ids[i])], k=10, filter=f, max_per_artist=cap, offset=offset)
            a, b = rec.similar(q), plain.similar(q)
            assert list(a.rows) == list(b.rows), (i, f)
            np.testing.assert_allclose(a.scores, b.scores, rtol=1e-5)


def test_a_starved_neighbour_list_falls_back_to_the_same_reranked_search(rec: Recommender) -> None:
    import dataclasses

    plain = Recommender(dataclasses.replace(rec.bundle, neighbours=None))
    truth = rec.bundle.tracks.genre_matrix()
    table = rec.bundle.neighbours
    assert table is not None
    for row in range(0, 600, 37):
        listed = table.rows[row]
        rare = next(g for g in range(len(rec.genre_names)) if truth[listed, g].sum() < 3)  # the list cannot fill k
        q = by_id(rec.ids[row], k=10, filter=TrackFilter(include_genres=[rec.genre_names[rare]]))
        a, b = rec.similar(q), plain.similar(q)
        assert a.examined > table.rows.shape[1]  # a search answered, re-ranked like the table
        assert list(a.rows) == list(b.rows) and len(a.rows) == 10
        np.testing.assert_allclose(a.scores, b.scores, rtol=1e-5)


def test_feature_values_meet_the_catalogs_rules(rec: Recommender) -> None:
    """A value the catalog's rules drop at indexing is refused, not clamped or wrapped into an answer (a key of 99 got
    key 3's answer, a duration of -5 a duration of 0's); one they impute takes the catalog's median, as at indexing."""
    from tests._seeds import near

    base = near(rec, 0)
    for name, value, words in [("key", 99.0, "key 99 is not >= 0 and <= 11"), ("key", -9.0, "key -9 is not >= 0"),
                               ("duration_ms", -5.0, "duration_ms -5 is not > 0"), ("tempo", 0.0, "tempo 0 is not > 0"),
                               ("mode", 7.0, "mode 7 is not >= 0 and <= 1"), ("energy", 1.2, "energy 1.2 is not")]:
        with pytest.raises(InvalidQuery, match=f"^seeds\\[0\\]\\.features: {words}"):
            rec.similar(SimilarQuery(seeds=[Seed(features={**base, name: value})]))
        with pytest.raises(InvalidQuery, match=words):
            rec.classify(features={**base, name: value})
    # beyond float32: the indexing drops such a track; duration_ms's log made 1e300 finite, and it was answered
    for value in (1e300, -1e39):
        with pytest.raises(InvalidQuery, match=r"^seeds\[0\]\.features: \['duration_ms'\] must be finite numbers "
                                               "within float32's range"):
            rec.similar(SimilarQuery(seeds=[Seed(features={**base, "duration_ms": value})]))
        with pytest.raises(InvalidQuery, match="within float32's range"):
            rec.classify(features={**base, "duration_ms": value})
    median = float(np.median(rec.bundle.tracks.features[:, rec.feature_names.index("time_signature")]))
    unknown_meter = rec.similar(SimilarQuery(seeds=[Seed(features={**base, "time_signature": 1.0})]))
    imputed = rec.similar(SimilarQuery(seeds=[Seed(features={**base, "time_signature": median})]))
    assert unknown_meter.rows.tolist() == imputed.rows.tolist() and unknown_meter.scores.tolist() == imputed.scores.tolist()
