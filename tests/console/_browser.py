"""How tests/console/test_browser.py drives the console in chromium: waits, tabs, fields and screenshots, and the
page scripts that doctor or hold back the server's answers. Imported only once that module has found chromium and
Selenium (it skips, or fails in CI, without them)."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from tests.conftest import REPO

SHOTS = Path(os.environ.get("MUSICREC_SCREENSHOTS", REPO / "build" / "screenshots"))
WAIT = 20.0


def wait_for(driver: Any, condition: Callable[[Any], Any], what: str, timeout: float = WAIT) -> Any:
    return WebDriverWait(driver, timeout, poll_frequency=0.1).until(condition, message=f"waiting for {what}")


def shot(driver: Any, name: str) -> None:
    driver.execute_script("window.scrollTo(0, 0)")
    driver.save_screenshot(str(SHOTS / f"{name}.png"))


def open_console(driver: Any, port: int, token: str = "") -> None:
    driver.get(f"http://127.0.0.1:{port}/")
    driver.execute_script("sessionStorage.setItem('musicrec-token', arguments[0]);", token)
    driver.get(f"http://127.0.0.1:{port}/")


def ready(driver: Any) -> None:
    wait_for(driver, lambda d: d.find_element(By.ID, "status").get_attribute("data-state") == "ok", "the status line")
    wait_for(driver, lambda d: d.execute_script("return !!(window.consoleState.bundle)"), "the bundle's facts")


def tab(driver: Any, name: str) -> None:
    driver.find_element(By.CSS_SELECTOR, f"#tabs button[data-tab='{name}']").click()


def pick_track(driver: Any, box: str, name: str, track_id: str) -> None:
    field = driver.find_element(By.ID, box)
    field.clear()
    field.send_keys(name)
    item = wait_for(driver, lambda d: d.find_element(By.CSS_SELECTOR, f"#{box}-results li[data-id='{track_id}']")
                    if box != "search-input" else d.find_element(By.CSS_SELECTOR, f"#search-results li[data-id='{track_id}']"),
                    f"{track_id} in the search results")
    item.click()


def set_value(driver: Any, element_id: str, value: object) -> None:
    field = driver.find_element(By.ID, element_id)
    field.clear()
    field.send_keys(str(value))


def shown(driver: Any, element_id: str) -> Any:
    """The element once it is displayed (an error box, a banner)."""
    return wait_for(driver, lambda d: (e := d.find_element(By.ID, element_id)).is_displayed() and e, f"#{element_id}")


def count(driver: Any, css: str) -> int:
    return len(driver.find_elements(By.CSS_SELECTOR, css))


# Window errors (an exception thrown in an event handler) from now on, for page_errors() to read.
COLLECT_ERRORS = "window.pageErrors = []; window.addEventListener('error', (e) => window.pageErrors.push(e.message));"


def page_errors(driver: Any) -> list[str]:
    return driver.execute_script("return window.pageErrors")


# Rewrites the tracks (name, artists) in every JSON answer the page gets, as a server with such a catalog would send
# them; `exhausted` also marks a SimilarTracks answer as shorter than asked. Reads what the console reads of a fetch.
DOCTOR_ANSWERS = """
const [namePrefix, artistPrefix, exhausted] = arguments;
const real = window.realFetch || (window.realFetch = window.fetch);
const rename = (node) => {
  if (Array.isArray(node)) node.forEach(rename);
  else if (node && typeof node === "object") {
    if (typeof node.track_id === "string" && typeof node.name === "string") {
      node.name = namePrefix + node.name;
      node.artists = (node.artists || []).map((a) => artistPrefix + a);
    }
    Object.values(node).forEach(rename);
  }
};
window.fetch = async (input, init) => {
  const response = await real(input, init);
  if (!(response.headers.get("content-type") || "").includes("json")) return response;
  const data = JSON.parse(await response.text());
  rename(data);
  if (exhausted && data.stats) data.stats.exhausted = true;
  const text = JSON.stringify(data);
  return { ok: response.ok, status: response.status, text: async () => text };
};
"""

# Holds back the answer to the request whose body holds `marker` until window.heldBack.release(); heldBack.settled
# turns true once the console is done with that answer (a timer runs after the promise callbacks that use it).
HOLD_BACK = """
const marker = arguments[0];
const real = window.realFetch || (window.realFetch = window.fetch);
let release;
const held = new Promise((resolve) => { release = resolve; });
window.heldBack = { release, settled: false };
window.fetch = async (input, init) => {
  const request = new Request(input, init);
  const slow = (await request.clone().text()).includes(marker);
  const response = await real(request);
  if (!slow) return response;
  await held;
  const text = await response.text();
  return { ok: response.ok, status: response.status,
           text: async () => { setTimeout(() => { window.heldBack.settled = true; }, 0); return text; } };
};
"""
