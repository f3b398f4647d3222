"""Browser tests: Playwright drives Debian's chromium against pytest-django's live server.

The live server runs in a thread of the test process, so Celery tasks run eagerly in that thread
(the test database is an in-memory SQLite that no worker process could reach), against the same tiny
champion models the pipeline tests register. Screenshots of every page go to test-artifacts/e2e/.
"""

import os
from pathlib import Path

import pytest

# Playwright's sync API runs an asyncio loop in the test thread; Django refuses ORM calls from a thread
# with a running loop unless told that this is intended.
os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "e2e"
PASSWORD = "correct-horse-battery-staple"  # tests.factories.DEFAULT_PASSWORD


@pytest.fixture(scope="session")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is missing: `make browser` (apt-get install chromium) installs it")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield launched
        launched.close()


@pytest.fixture
def portal(settings, tiny_model_store, tmp_path, transactional_db, live_server):
    """The live portal with tiny models, private files under tmp and Celery tasks run in the server thread."""
    import ml.tasks
    from celery_app import app as celery_app
    from clinic.viewer import mask_cache

    settings.MLFLOW_TRACKING_URI = tiny_model_store
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage",
                    "OPTIONS": {"location": str(tmp_path / "media"), "base_url": None}},
    }
    eager_before = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    ml.tasks._engine = None
    mask_cache.clear()  # each test's database starts its primary keys again
    yield live_server
    celery_app.conf.task_always_eager = eager_before
    ml.tasks._engine = None
    mask_cache.clear()


UNLABELLED_CONTROLS_SCRIPT = """() => {
  const visible = (element) => element.offsetParent !== null || element.getClientRects().length > 0;
  const named = (element) => element.labels?.length || element.getAttribute("aria-label")
    || element.getAttribute("aria-labelledby") || element.getAttribute("title");
  const controls = [...document.querySelectorAll(
    "input:not([type=hidden]):not([type=submit]):not([type=button]), select, textarea")]
    .filter((element) => visible(element) && !named(element))
    .map((element) => element.outerHTML.slice(0, 120));
  const images = [...document.querySelectorAll("img:not([alt])")].map((element) => element.outerHTML.slice(0, 120));
  return [...controls, ...images];
}"""


class BrowserSession:
    """One person's browser tab, with the console errors it met and numbered screenshots."""

    counter = 0

    def __init__(self, browser, base_url, who):
        self.context = browser.new_context(base_url=base_url, viewport={"width": 1280, "height": 900},
                                           accept_downloads=True)
        self.page = self.context.new_page()
        self.page.set_default_timeout(20_000)
        self.who = who
        self.errors = []
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))
        self.page.on("console", self._console_message)
        self.page.on("response", self._response)

    def _console_message(self, message):
        # Failed loads are reported with their URL by _response; the console line carries no URL.
        if message.type == "error" and not message.text.startswith("Failed to load resource"):
            self.errors.append(message.text)

    def _response(self, response):
        if response.status >= 400:
            self.errors.append(f"{response.status} {response.request.method} {response.url}")

    def log_in(self, email, password=PASSWORD):
        page = self.page
        page.goto("/accounts/login/")
        page.get_by_label("Email").fill(email)
        page.get_by_label("Password").fill(password)
        page.get_by_role("button", name="Sign In").click()
        page.wait_for_load_state()
        return page

    def open_refused(self, url):
        """Open a page that must not exist for this person; returns the HTTP status.

        The browser logs the 404 of the document itself as a console error; that one is expected.
        """
        errors_before = len(self.errors)
        response = self.page.goto(url)
        del self.errors[errors_before:]
        return response.status

    def unlabelled_controls(self):
        """Visible form controls a screen reader could not name, and images without an alt attribute."""
        return self.page.evaluate(UNLABELLED_CONTROLS_SCRIPT)

    def screenshot(self, name):
        """Save a full-page screenshot; every page shot is also checked for unnamed controls."""
        unlabelled = self.unlabelled_controls()
        assert not unlabelled, f"{self.page.url} has unlabelled controls or images: {unlabelled}"
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        BrowserSession.counter += 1
        path = ARTIFACTS / f"{BrowserSession.counter:02d}-{self.who}-{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path

    def close(self):
        self.context.close()


@pytest.fixture
def open_browser(browser, portal):
    sessions = []

    def open_session(who):
        session = BrowserSession(browser, portal.url, who)
        sessions.append(session)
        return session

    yield open_session
    for session in sessions:
        session.close()
    errors = [f"{session.who}: {error}" for session in sessions for error in session.errors]
    assert not errors, f"the pages logged errors: {errors}"
