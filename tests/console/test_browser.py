"""The web console in a real browser (Debian's chromium + chromedriver, driven by Selenium) against a
real server on a small bundle; and the HTML report opened in the same browser.

Screenshots of each page go to build/screenshots/ (git-ignored; MUSICREC_SCREENSHOTS moves them) for
people to look at. Without chromium the tests are skipped, except in CI (CI=true), whose .ci/run
installs it: there a missing browser is a failure, not a skip.
"""

from __future__ import annotations

import os
import shutil
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from server import RunningServer, ServerOptions
from server._generated.musicrec.v1 import recommender_pb2 as pb
from server._generated.musicrec.v1 import recommender_pb2_grpc as pb_grpc
from tests._serving import serving

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
# Hang guard for the report with pictures: matplotlib draws it on the server, seconds on a quiet machine. Under
# `pytest -n 2` this worker runs at niceness 10 (tests/conftest.py) while the other builds the real dataset on both
# cores, and then it took longer than WAIT (a clean run with an empty HOME failed so).
DRAWING_WAIT = 240.0

if not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()):
    if os.environ.get("CI"):
        pytest.fail("CI needs chromium and chromium-driver (.ci/run installs them)", pytrace=False)
    pytest.skip("no chromium/chromedriver here (apt-get install chromium chromium-driver)", allow_module_level=True)

webdriver = pytest.importorskip("selenium.webdriver")
from selenium.webdriver.chrome.options import Options  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import Select  # noqa: E402

from tests.console._browser import (  # noqa: E402
    COLLECT_ERRORS,
    DOCTOR_ANSWERS,
    HOLD_BACK,
    SHOTS,
    WAIT,
    count,
    open_console,
    page_errors,
    pick_track,
    ready,
    set_value,
    shot,
    shown,
    tab,
    wait_for,
)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    options = Options()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1440,1100",
                "--hide-scrollbars", "--disable-extensions", "--no-first-run"):
        options.add_argument(arg)
    # an explicit driver path: Selenium Manager (which would download drivers) never runs
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(WAIT)
    SHOTS.mkdir(parents=True, exist_ok=True)
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def server_options() -> ServerOptions:
    """The module's server (``running``, tests/conftest.py) with the console on a free HTTP port."""
    return ServerOptions(http_port=0)


def test_the_map_draws_points_of_every_mood(browser: Any, running: RunningServer, stub: pb_grpc.RecommenderStub) -> None:
    open_console(browser, running.http_port)
    ready(browser)
    tab(browser, "map")
    canvas = wait_for(browser, lambda d: (c := d.find_element(By.ID, "map-canvas")).get_attribute("data-drawn-moods")
                      and c, "the map to be drawn")
    moods = {m.mood_id for m in stub.ListMoods(pb.ListMoodsRequest(), timeout=10).moods}
    drawn = {int(m) for m in canvas.get_attribute("data-drawn-moods").split(",")}
    assert drawn == moods
    assert int(canvas.get_attribute("data-points")) == running.holder.require().n
    counts = browser.execute_script("return window.consoleState.map.drawnByMood")
    assert all(counts[str(m)] > 0 for m in moods)
    assert len(browser.find_elements(By.CSS_SELECTOR, "#map-legend li")) == len(moods)
    # hover shows a track and its mood; the tip is drawn by the page, so ask the page where a point is
    x, y = browser.execute_script("const m = window.consoleState.map; return [m.px[0], m.py[0]];")
    size = canvas.size
    webdriver.ActionChains(browser).move_to_element_with_offset(canvas, x - size["width"] / 2,
                                                                y - size["height"] / 2).perform()
    tip = wait_for(browser, lambda d: (t := d.find_element(By.ID, "map-tip")).is_displayed() and t, "the hover tip")
    rec = running.holder.require()
    row = rec.track(browser.execute_script("const m = window.consoleState.map; return m.data.id[m.hover];"))
    assert rec.names[row] in tip.text and rec.mood_names[row] in tip.text.replace("\n", " ")
    shot(browser, "map")
    # a click opens the track's similar tracks
    webdriver.ActionChains(browser).click().perform()
    rows = wait_for(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#similar-results tbody tr"), "similar tracks")
    assert browser.find_element(By.CSS_SELECTOR, f"#seeds li[data-id='{rec.ids[row]}']")
    assert rows and rec.ids[row] not in [r.get_attribute("data-id") for r in rows]


def test_a_similar_search_returns_the_ids_of_the_grpc_call(browser: Any, running: RunningServer,
                                                            stub: pb_grpc.RecommenderStub) -> None:
    rec = running.holder.require()
    seed, name = rec.ids[7], rec.names[7]
    open_console(browser, running.http_port)
    ready(browser)
    pick_track(browser, "search-input", name, seed)
    set_value(browser, "opt-k", 8)
    set_value(browser, "opt-artist-cap", 2)
    browser.find_element(By.ID, "opt-gw-default").click()  # own genre weight
    browser.execute_script("const s = document.getElementById('opt-gw'); s.value = 0.2; s.dispatchEvent(new Event('input'));")
    browser.find_element(By.ID, "similar-run").click()
    rows = wait_for(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#similar-results tbody tr"), "results")
    shown = [r.get_attribute("data-id") for r in rows]
    expected = stub.SimilarTracks(pb.SimilarTracksRequest(seeds=[pb.Seed(track_id=seed)], k=8, max_per_artist=2,
                                                          genre_weight=0.2), timeout=10)
    assert shown == [r.track.track_id for r in expected.results]
    stats = browser.find_element(By.ID, "similar-stats").text
    assert "candidates examined" in stats and "8 results" in stats
    scores = [r.find_elements(By.TAG_NAME, "td")[1].text for r in rows]
    assert scores == [f"{r.score:.3f}" for r in expected.results]
    shot(browser, "similar")


def test_errors_say_what_went_wrong_and_replace_the_last_answer(browser: Any, running: RunningServer) -> None:
    rec = running.holder.require()
    open_console(browser, running.http_port)
    ready(browser)
    # the console's own check: nothing was sent, so no hint about an unreachable server
    browser.find_element(By.ID, "similar-run").click()
    error = shown(browser, "similar-error")
    assert error.get_attribute("data-code") == "local" and "No seed" in error.text and "keeps trying" not in error.text
    pick_track(browser, "search-input", rec.names[7], rec.ids[7])
    browser.find_element(By.ID, "opt-k").clear()  # blank: the default, 10
    browser.find_element(By.ID, "similar-run").click()
    wait_for(browser, lambda d: count(d, "#similar-results tbody tr") == 10, "the default k's results")
    # the server's refusal replaces the results, and reads as the server wrote it
    set_value(browser, "opt-k", 5000)
    browser.find_element(By.ID, "similar-run").click()
    error = shown(browser, "similar-error")
    assert error.get_attribute("data-code") == "400" and error.text.endswith("5000") and "null" not in error.text
    assert count(browser, "#similar-results tbody tr") == 0 and not browser.find_element(By.ID, "similar-stats").text
    set_value(browser, "opt-k", 0)  # not quietly the default
    browser.find_element(By.ID, "similar-run").click()
    wait_for(browser, lambda d: "from 1 up" in d.find_element(By.ID, "similar-error").text, "k=0 refused")
    assert browser.find_element(By.ID, "similar-error").get_attribute("data-code") == "local"
    browser.find_element(By.ID, "opt-k").clear()
    # a target the number box cannot read, and a feature given two targets: each was left out unsaid (an audit)
    for _ in range(2):
        browser.find_element(By.ID, "add-target").click()
    rows = browser.find_elements(By.CSS_SELECTOR, "#targets .row")
    for row, value in zip(rows, ("0.1", "-"), strict=True):
        Select(row.find_element(By.TAG_NAME, "select")).select_by_value("energy")
        row.find_element(By.TAG_NAME, "input").send_keys(value)
    browser.find_element(By.ID, "similar-run").click()
    wait_for(browser, lambda d: "Targets: energy: what is typed is not a number" in d.find_element(
        By.ID, "similar-error").text, "the unreadable target refused")
    rows[1].find_element(By.TAG_NAME, "input").clear()
    rows[1].find_element(By.TAG_NAME, "input").send_keys("0.9")
    browser.find_element(By.ID, "similar-run").click()
    wait_for(browser, lambda d: "energy has two targets" in d.find_element(By.ID, "similar-error").text,
             "the second target refused")
    for row in rows:
        row.find_element(By.TAG_NAME, "button").click()
    set_value(browser, "search-input", "no such words")
    wait_for(browser, lambda d: "no track matches" in d.find_element(By.ID, "search-results").text, "no matches")
    tab(browser, "classify")
    browser.find_element(By.ID, "classify-track").click()
    error = shown(browser, "classify-error")
    assert "No track" in error.text and "keeps trying" not in error.text


def test_an_older_answer_never_replaces_a_newer_one(browser: Any, running: RunningServer) -> None:
    rec = running.holder.require()
    open_console(browser, running.http_port)
    ready(browser)

    def race(run: str, field: str, slow: int, fast: int, rows: str, marker: str) -> None:
        browser.execute_script(HOLD_BACK, marker)
        browser.execute_script("""const [run, field, slow, fast] = arguments;
            for (const value of [slow, fast]) { document.getElementById(field).value = value; document.getElementById(run).click(); }""",
                               run, field, slow, fast)
        wait_for(browser, lambda d: count(d, rows) == fast, f"{run}'s newer answer")
        browser.execute_script("window.heldBack.release()")
        wait_for(browser, lambda d: d.execute_script("return window.heldBack.settled"), f"{run}'s older answer")
        assert count(browser, rows) == fast

    pick_track(browser, "search-input", rec.names[7], rec.ids[7])
    race("similar-run", "opt-k", 1000, 3, "#similar-results tbody tr", '"k":1000')
    tab(browser, "playlist")
    race("playlist-run", "pl-length", 12, 4, "#playlist-results tbody tr", '"length":12')
    tab(browser, "classify")
    pick_track(browser, "cl-search", rec.names[3], rec.ids[3])
    race("classify-track", "cl-top", 6, 2, "#classify-genres .bar", '"top_k":6')


def test_a_bundle_switch_clears_the_old_bundles_answers_and_says_so_until_dismissed(browser: Any,
                                                                                     running: RunningServer) -> None:
    rec = running.holder.require()
    open_console(browser, running.http_port)
    ready(browser)
    pick_track(browser, "search-input", rec.names[7], rec.ids[7])
    browser.find_element(By.ID, "similar-run").click()
    wait_for(browser, lambda d: count(d, "#similar-results tbody tr"), "results")
    genre = rec.genre_names[0]
    Select(browser.find_element(By.ID, "f-include")).select_by_value(genre)
    Select(browser.find_element(By.ID, "f-moods")).select_by_index(0)
    # what the 5-second poll sees after a reload: the page was drawn from another bundle than the one served now
    browser.execute_script("window.consoleState.version = 'an-older-bundle'")
    browser.execute_async_script("window.consoleRefresh().then(arguments[0])")
    assert "switched bundles" in shown(browser, "banner").text
    assert count(browser, "#similar-results tbody tr") == 0 and count(browser, "#seeds li[data-id]") == 0
    assert [o.get_attribute("value") for o in Select(browser.find_element(By.ID, "f-include")).all_selected_options] == [genre]
    assert not Select(browser.find_element(By.ID, "f-moods")).all_selected_options  # a mood number is another mood
    browser.execute_async_script("window.consoleRefresh().then(arguments[0])")  # the next poll
    assert browser.find_element(By.ID, "banner").is_displayed()
    browser.find_element(By.ID, "banner-dismiss").click()
    assert not browser.find_element(By.ID, "banner").is_displayed()


def test_long_and_right_to_left_names_and_a_phone_keep_the_page_in_its_width(browser: Any,
                                                                              running: RunningServer) -> None:
    rec = running.holder.require()
    open_console(browser, running.http_port)
    ready(browser)
    fits = "return document.documentElement.scrollWidth <= window.innerWidth"
    browser.execute_script(DOCTOR_ANSWERS, "L" * 600, "A" * 600, True)
    pick_track(browser, "search-input", rec.names[7], rec.ids[7])
    browser.find_element(By.ID, "similar-run").click()
    wait_for(browser, lambda d: count(d, "#similar-results tbody tr"), "results")
    assert browser.execute_script(fits)
    stats = browser.find_element(By.ID, "similar-stats").text
    assert "fewer tracks than asked matched" in stats and "the filters" not in stats  # none were set
    try:
        browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {"width": 390, "height": 844, "deviceScaleFactor": 1,
                                                                       "mobile": False})
        assert browser.execute_script("return window.innerWidth") == 390
        save = browser.find_element(By.ID, "token-save").rect
        assert save["x"] + save["width"] <= 390 and browser.execute_script(fits)
        tab(browser, "map")
        canvas = wait_for(browser, lambda d: (c := d.find_element(By.ID, "map-canvas")).get_attribute("data-drawn-moods")
                          and c, "the map")
        assert canvas.rect["x"] + canvas.rect["width"] <= 390 and browser.execute_script(fits)
        shot(browser, "phone-map")
    finally:
        browser.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
    # U+202E in a name reverses what follows it, unless the name is isolated: the × stays at the chip's end
    tab(browser, "similar")
    browser.execute_script(DOCTOR_ANSWERS, "\u202e", "", False)
    pick_track(browser, "search-input", rec.names[8], rec.ids[8])
    chip = browser.find_element(By.CSS_SELECTOR, f"#seeds li[data-id='{rec.ids[8]}']")
    remove = chip.find_element(By.TAG_NAME, "button")
    assert remove.rect["x"] > chip.rect["x"] + chip.rect["width"] / 2


def test_a_playlist_renders_in_order(browser: Any, running: RunningServer, stub: pb_grpc.RecommenderStub) -> None:
    open_console(browser, running.http_port)
    ready(browser)
    tab(browser, "playlist")
    Select(browser.find_element(By.ID, "pl-mood")).select_by_value("1")
    set_value(browser, "pl-length", 12)
    browser.find_element(By.ID, "playlist-run").click()
    rows = wait_for(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#playlist-results tbody tr"), "the playlist")
    expected = stub.MoodPlaylist(pb.MoodPlaylistRequest(mood_id=1, length=12), timeout=10)
    assert [int(r.get_attribute("data-position")) for r in rows] == list(range(len(expected.entries)))
    assert [r.get_attribute("data-id") for r in rows] == [e.track.track_id for e in expected.entries]
    assert browser.find_elements(By.CSS_SELECTOR, "#playlist-chart polyline")
    shot(browser, "playlist")


def test_classification_shows_probabilities_and_contributions(browser: Any, running: RunningServer) -> None:
    rec = running.holder.require()
    open_console(browser, running.http_port)
    ready(browser)
    tab(browser, "classify")
    pick_track(browser, "cl-search", rec.names[3], rec.ids[3])
    wait_for(browser, lambda d: d.find_element(By.CSS_SELECTOR, "#cl-features input").get_attribute("value"),
             "the track's feature values")
    browser.find_element(By.ID, "classify-track").click()
    bars = wait_for(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#classify-genres .bar"), "genre bars")
    assert len(bars) == 5
    assert browser.find_elements(By.CSS_SELECTOR, "#classify-contributions .bar")
    assert rec.genres[3][0] in browser.find_element(By.ID, "classify-known").text
    shot(browser, "classify")
    # another track: the first one's genres are not shown under its name
    pick_track(browser, "cl-search", rec.names[4], rec.ids[4])
    assert rec.names[4] in browser.find_element(By.ID, "cl-track").text
    assert count(browser, "#classify-genres .bar") == 0 and not browser.find_element(By.ID, "classify-known").text


def test_the_report_tab_and_the_html_report_load_every_image(browser: Any, running: RunningServer, tmp_path: Path) -> None:
    open_console(browser, running.http_port)
    ready(browser)
    tab(browser, "report")
    assert "musicrec bundle" in browser.find_element(By.ID, "report-text").text
    browser.find_element(By.ID, "report-pictures").click()
    frame = wait_for(browser, lambda d: (f := d.find_element(By.ID, "report-frame")).is_displayed() and f, "the report",
                     timeout=DRAWING_WAIT)
    browser.switch_to.frame(frame)
    wait_for(browser, lambda d: d.find_elements(By.TAG_NAME, "img"), "report images")
    assert browser.execute_script("return [...document.images].every(i => i.complete && i.naturalWidth > 0)")
    browser.switch_to.default_content()
    shot(browser, "report")
    # the page opened on its own, as a file (`musicrec report --html` writes this page: engine bundle_report_html,
    # tests/engine/test_figures.py); taken from the server, which keeps it drawn, rather than drawn again (8 s)
    out = tmp_path / "report.html"
    with urllib.request.urlopen(f"http://127.0.0.1:{running.http_port}/console/api/report.html", timeout=60) as answer:
        out.write_bytes(answer.read())
    browser.get(out.as_uri())
    widths = browser.execute_script("return [...document.images].map(i => i.complete ? i.naturalWidth : 0)")
    assert len(widths) == 7 and min(widths) > 0
    shot(browser, "report-file")


def test_auth_failures_are_shown_as_such_and_an_outage_is_announced(browser: Any, bundle_dir: Path) -> None:
    with serving(bundle_dir, ServerOptions(http_port=0, read_tokens=("s3cret",))) as served:
        open_console(browser, served.server.http_port)
        wait_for(browser, lambda d: d.find_element(By.ID, "status").get_attribute("data-state") == "auth", "auth state")
        banner = browser.find_element(By.ID, "banner")
        assert banner.is_displayed() and "requires a bearer token" in banner.text
        field = browser.find_element(By.ID, "search-input")
        field.send_keys("Track")
        wait_for(browser, lambda d: "UNAUTHENTICATED" in d.find_element(By.ID, "search-results").text,
                 "the search to say it was refused")
        browser.find_element(By.ID, "similar-run").click()  # no seed: the console says so before asking
        shot(browser, "auth-needed")
        # no map (refused): hovering the canvas finds nothing to point at, and throws nothing
        browser.execute_script(COLLECT_ERRORS)
        tab(browser, "map")
        assert shown(browser, "map-error").get_attribute("data-code") == "401"
        canvas = browser.find_element(By.ID, "map-canvas")
        webdriver.ActionChains(browser).move_to_element(canvas).move_by_offset(5, 5).move_by_offset(5, 5).perform()
        assert page_errors(browser) == [] and not browser.find_element(By.ID, "map-tip").is_displayed()
        # a token no server has (not printable ASCII; the browser cannot even send it) is refused when saved
        set_value(browser, "token-input", "токен")
        browser.find_element(By.ID, "token-save").click()
        assert "not printable ASCII" in shown(browser, "token-error").text
        assert browser.find_element(By.ID, "status").get_attribute("data-state") == "auth"
        set_value(browser, "token-input", "wrong")
        browser.find_element(By.ID, "token-save").click()
        wait_for(browser, lambda d: "refused this token" in d.find_element(By.ID, "banner").text, "a refused token")
        tab(browser, "playlist")
        browser.find_element(By.ID, "playlist-run").click()
        error = wait_for(browser, lambda d: (e := d.find_element(By.ID, "playlist-error")).is_displayed() and e,
                         "the playlist error")
        assert error.get_attribute("data-code") == "401" and "Authentication failed" in error.text
        assert "null" not in error.text
        assert not browser.find_element(By.ID, "token-error").is_displayed()  # "wrong" is a token, just not this one's
        shot(browser, "auth-refused")
        set_value(browser, "token-input", "s3cret")
        browser.find_element(By.ID, "token-save").click()
        ready(browser)
        assert not browser.find_element(By.ID, "playlist-error").is_displayed()  # the old token's 401 is gone
        browser.find_element(By.ID, "playlist-run").click()
        wait_for(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#playlist-results tbody tr"), "the playlist")
    # the server has stopped
    wait_for(browser, lambda d: d.find_element(By.ID, "status").get_attribute("data-state") == "down",
             "the console to notice the server is gone")
    assert "not answering" in browser.find_element(By.ID, "banner").text
    browser.find_element(By.ID, "playlist-run").click()
    error = wait_for(browser, lambda d: (e := d.find_element(By.ID, "playlist-error")).get_attribute("data-code") == "0"
                     and e, "the unreachable error")
    assert "did not answer" in error.text
    shot(browser, "server-down")
