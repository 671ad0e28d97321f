"""The web UI in headless Chromium: a FlowForge server on a free 127.0.0.1 port against a
temporary demo project, and a signed-in browser page.

Chromium is Debian's (/usr/bin/chromium, or FLOWFORGE_CHROMIUM), driven by Playwright without
``playwright install``. Without it the tests skip with the reason stated, unless
FLOWFORGE_REQUIRE_BROWSER is set (CI), when they fail.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[3]
SHOTS = REPO / "test-artifacts" / "screenshots"
CHROMIUM = os.environ.get("FLOWFORGE_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ADMIN_PASSWORD = "ui-test-admin-pw"


def _missing_browser() -> str | None:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the 'playwright' package is not installed (pip install -e '.[dev]')"
    if not os.access(CHROMIUM, os.X_OK):
        return f"Chromium not found at {CHROMIUM} (apt-get install chromium, or set FLOWFORGE_CHROMIUM)"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _server_command(project: Path, port: int) -> list[str]:
    """``flowforge serve`` once the CLI has it, else the UI's own development server."""
    probe = subprocess.run([sys.executable, "-m", "flowforge", "serve", "--help"], capture_output=True, text=True)
    if probe.returncode == 0:
        return [sys.executable, "-m", "flowforge", "-p", str(project), "serve", "--host", "127.0.0.1",
                "--port", str(port)]
    return [sys.executable, "-m", "flowforge.ui.devserver", "--project", str(project), "--port", str(port)]


def demo_without_workflow(folder: Path) -> Path:
    """The demo project (BFSI source in SQLite, CRM CSV, connections) without its workflow:
    the tests create it from the template gallery."""
    from flowforge.core.project import setup_demo_project

    project = folder / "project"
    setup_demo_project(project, scale=0.02)
    (project / "workflows" / "bfsi_customer_360.yml").unlink()
    return project


@pytest.fixture(scope="session")
def ui_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return demo_without_workflow(tmp_path_factory.mktemp("ui"))


def require_browser() -> None:
    """Skip (on a user's machine) or fail (CI) when there is no Chromium to drive."""
    missing = _missing_browser()
    if missing:
        if os.environ.get("FLOWFORGE_REQUIRE_BROWSER"):
            pytest.fail(missing)
        pytest.skip(missing)


@contextlib.contextmanager
def serving(project: Path) -> Iterator[str]:
    """``flowforge serve`` for ``project`` on a free port, running this checkout's sources; its base URL."""
    port = _free_port()
    log_path = project.parent / f"server-{port}.log"
    env = {**os.environ, "FLOWFORGE_ADMIN_PASSWORD": ADMIN_PASSWORD,
           "PYTHONPATH": os.pathsep.join([str(REPO / "src"), os.environ.get("PYTHONPATH", "")])}
    with log_path.open("w") as log:
        proc = subprocess.Popen(_server_command(project, port), cwd=project, env=env, stdout=log,
                                stderr=subprocess.STDOUT)
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    with urllib.request.urlopen(base + "/ui/login", timeout=2):
                        break
                except OSError:
                    if proc.poll() is not None or time.monotonic() > deadline:
                        log.flush()
                        pytest.fail(f"the server did not start on {base}:\n{log_path.read_text()[-3000:]}")
                    time.sleep(0.3)
            yield base
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()


@pytest.fixture(scope="session")
def server(ui_project: Path) -> Iterator[str]:
    require_browser()
    with serving(ui_project) as base:
        yield base


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """The session's one Chromium (Playwright's sync API allows one per process)."""
    from playwright.sync_api import sync_playwright

    require_browser()
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def sign_in(browser: Any, base: str, username: str, password: str) -> Any:
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    context.set_default_timeout(30_000)
    page = context.new_page()
    page.goto(base + "/ui/workflows")
    page.wait_for_url("**/ui/login**")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("[data-testid=sign-in]")
    page.wait_for_url("**/ui/workflows")
    return page


@pytest.fixture(scope="session")
def admin_page(browser: Any, server: str) -> Iterator[Any]:
    page = sign_in(browser, server, "admin", ADMIN_PASSWORD)
    yield page
    page.context.close()


def own_server(label: str) -> tuple[Any, Any, Any]:
    """``ui_project``, ``server`` and ``admin_page`` fixtures of a module's own (the demo project without
    its workflow, served on its own port), for pages whose tests must not meet what other modules'
    tests leave behind. A module binds them by these names:
    ``ui_project, server, admin_page = own_server("schedules")``."""

    @pytest.fixture(scope="module")
    def ui_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
        return demo_without_workflow(tmp_path_factory.mktemp(label))

    @pytest.fixture(scope="module")
    def server(browser: Any, ui_project: Path) -> Iterator[str]:
        with serving(ui_project) as base:
            yield base

    @pytest.fixture(scope="module")
    def admin_page(browser: Any, server: str) -> Iterator[Any]:
        page = sign_in(browser, server, "admin", ADMIN_PASSWORD)
        yield page
        page.context.close()

    return ui_project, server, admin_page


def shot(page: Any, name: str) -> Path:
    """A full-page screenshot in test-artifacts/screenshots/ (git-ignored), to look at."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"{name}.png"
    page.wait_for_timeout(400)  # charts animate in
    page.screenshot(path=str(path), full_page=True)
    return path


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """On a failure, save what the signed-in page showed."""
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    page = getattr(item, "funcargs", {}).get("admin_page")
    if report.when == "call" and report.failed and page is not None:
        with contextlib.suppress(Exception):  # the page may be gone; the failure itself is what matters
            shot(page, f"FAILED_{item.name}")
