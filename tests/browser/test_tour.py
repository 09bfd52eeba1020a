"""A tour of the web UI on the database ``nudge demo`` builds, one screenshot per page: the README's pictures.

The other browser tests seed the little each one needs; these pages are shown with what a newcomer sees after
``make demo`` (the real samples, the planned, drafted, approved and sent ``demo-retention`` campaign, the
abandoned-cart template, the outbox, outcomes). ``make screenshots`` runs this file alone with
``NUDGE_SCREENSHOT_DIR=docs/screenshots``. Each page is checked for the demo's content before it is taken, so
an error page or an empty one fails the test instead of ending up in the README.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image
from playwright.sync_api import Browser, FloatRect, Page, expect
from pydantic import SecretStr
from sqlalchemy import select

from core.clock import utcnow
from core.db import Database
from core.models import Role, User
from core.settings import Settings
from tests.support.demo import DemoRun
from web import accounts
from web.app import create_app
from web.serving import free_port, serving

CAMPAIGN, TRIGGER = "demo-retention", "demo-abandoned-cart"
DEMO_USER, PASSWORD = "demo", "tour-of-the-demo"  # the admin the demo prints a login for
WIDTH, HEIGHT, MAX_HEIGHT = 1280, 900, 1600  # README-sized: a wide screen, at most ~two screens tall
MARGIN = 24  # below a section shown whole
REVIEW_HEIGHT = 2000  # one variant's card: its preview, guardrail report, copy, cited creative and token cost
LIST_HEIGHT = 1000  # a long table: its first rows say what it is
REPORT_HEIGHT = 2400  # the HTML report down to its ground-truth check
LIBRARY_QUERY = "fiber"


@pytest.fixture(scope="module")
def demo_database(demo_run: DemoRun) -> Iterator[Database]:
    """The demo's database, with a known password on the demo admin (the demo prints a new one each run)."""
    assert demo_run.exit_code == 0, demo_run.output
    database = demo_run.open_database()
    with database.session() as session:
        admin = session.scalars(select(User).where(User.username == DEMO_USER)).one_or_none()
        if admin is None:  # an older demo without its login
            accounts.create_user(session, DEMO_USER, PASSWORD, Role.ADMIN, now=utcnow())
        else:
            accounts.set_password(session, admin, PASSWORD)
    yield database
    database.dispose()


@pytest.fixture(scope="module")
def demo_url(demo_run: DemoRun, demo_database: Database) -> Iterator[str]:
    """The web app on the demo's data directory, as ``nudge serve`` would serve it after ``make demo``."""
    port = free_port()
    settings = Settings(
        data_dir=demo_run.data_dir,
        database_url=SecretStr(demo_run.database_url),
        public_base_url=f"http://127.0.0.1:{port}",
    )
    with serving(create_app(settings, database=demo_database), port) as url:
        yield url


@pytest.fixture(scope="module")
def page(browser: Browser, demo_url: str) -> Iterator[Page]:
    """The demo admin, signed in once for the whole tour, in a 1280-wide window."""
    context = browser.new_context(viewport={"width": WIDTH, "height": HEIGHT})
    signed_in = context.new_page()
    signed_in.goto(f"{demo_url}/")
    signed_in.get_by_label("Username").fill(DEMO_USER)
    signed_in.get_by_label("Password").fill(PASSWORD)
    signed_in.get_by_role("button", name="Sign in").click()
    expect(signed_in.get_by_role("heading", name="Dashboard")).to_be_visible()
    yield signed_in
    context.close()


def visit(page: Page, url: str) -> Page:
    """Open ``url`` and fail at once on an error page, with its message, rather than on a missing element."""
    response = page.goto(url)
    assert response is not None, url
    assert response.ok, f"{url} answered {response.status}: {main_text(page)}"
    return page


def snap(page: Page, path: Path, *, height: int = MAX_HEIGHT, through: str | None = None) -> Path:
    """The page from its top, header included, cut at ``height`` (or at the bottom of ``through``'s first element,
    so a section is shown whole): enough to read in a README, small enough to load."""
    page.evaluate("window.scrollTo(0, 0)")
    bottom = int(page.evaluate("document.documentElement.scrollHeight"))
    if through is not None:
        box = page.locator(through).first.bounding_box()
        assert box is not None, f"{through} is not shown"
        bottom = round(box["y"] + box["height"]) + MARGIN
    clip: FloatRect = {"x": 0, "y": 0, "width": WIDTH, "height": min(bottom, height)}
    page.screenshot(path=path, full_page=True, clip=clip)
    return path


def main_text(page: Page) -> str:
    """The main landmark's text, for checks that the page shows the demo's data."""
    return page.locator("main").inner_text()


def test_dashboard(page: Page, demo_url: str, screenshots: Path) -> None:
    visit(page, f"{demo_url}/")
    expect(page.locator("#states-h + table")).to_contain_text("sent")
    expect(page.locator("#budgets-h + table tbody tr").first).to_be_visible()
    snap(page, screenshots / "dashboard.png")


def test_campaign(page: Page, demo_url: str, screenshots: Path) -> None:
    visit(page, f"{demo_url}/campaigns/{CAMPAIGN}")
    expect(page.locator("h1")).to_contain_text(CAMPAIGN)
    expect(page.get_by_role("columnheader", name="Unconstrained")).to_be_visible()  # the plan in both modes
    expect(page.locator("figure svg")).to_be_visible()  # the profit curve
    text = main_text(page)
    assert "held out" in text, text
    assert "Customers per arm: global_holdout" in text, text
    expect(page.locator("#audit-h + table")).to_contain_text("sam.rivera")  # the demo's approval, audited
    snap(page, screenshots / "campaign.png")


def test_review(page: Page, demo_url: str, screenshots: Path) -> None:
    visit(page, f"{demo_url}/campaigns/{CAMPAIGN}/review")
    expect(page.locator("h1")).to_contain_text(CAMPAIGN)
    expect(page.get_by_role("heading", name="Guardrail report").first).to_be_visible()
    expect(page.get_by_role("heading", name="Creative cited").first).to_be_visible()
    assert "expected profit" in main_text(page)
    frames = page.locator("iframe.preview")
    expect(frames.first).to_be_attached()
    for index in range(frames.count()):  # lazy frames load when scrolled to; else the picture shows them blank
        frames.nth(index).scroll_into_view_if_needed()
        expect(page.frame_locator("iframe.preview").nth(index).get_by_text("Subject:")).to_be_visible()
    shot = snap(page, screenshots / "review.png", height=REVIEW_HEIGHT, through="article.variant")
    assert_not_blank(shot, page, "iframe.preview")


def assert_not_blank(path: Path, page: Page, selector: str) -> None:
    """The screenshot at ``path`` shows something inside ``selector``'s first element, not an empty box.

    Call it right after ``snap``: the element's box is read with the page scrolled to its top, as it was taken.
    """
    box = page.locator(selector).first.bounding_box()
    assert box is not None, f"{selector} is not shown"
    inside = (box["x"] + 2, box["y"] + 2, box["x"] + box["width"] - 2, box["y"] + box["height"] - 2)
    with Image.open(path) as image:
        colours = image.crop(inside).getcolors(maxcolors=16)
    assert colours is None or len(colours) > 2, f"{selector} is blank in {path.name}: {colours}"


def test_experiment(page: Page, demo_url: str, screenshots: Path) -> None:
    visit(page, f"{demo_url}/experiments/{CAMPAIGN}")
    expect(page.locator("h1")).to_contain_text("Experiment")
    arms = page.locator("h2:text-is('Arms') + table")
    for arm in ("holdout", "global_holdout"):
        expect(arms.get_by_role("rowheader", name=arm, exact=True)).to_be_visible()
    for plot in page.locator("figure img").all():
        expect(plot).to_have_js_property("complete", value=True)
    snap(page, screenshots / "experiment.png")


def test_trigger(page: Page, demo_url: str, screenshots: Path) -> None:
    visit(page, f"{demo_url}/triggers")
    row = page.locator("tbody tr").filter(has=page.locator(f"a[href='/campaigns/{TRIGGER}']"))
    expect(row).to_contain_text("approved")
    snap(page, screenshots / "trigger.png")


def test_outbox(page: Page, demo_url: str, screenshots: Path) -> None:
    visit(page, f"{demo_url}/outbox")
    expect(page.locator("tbody tr").first).to_contain_text("email")
    snap(page, screenshots / "outbox.png", height=LIST_HEIGHT)


def test_library(page: Page, demo_url: str, screenshots: Path) -> None:
    visit(page, f"{demo_url}/library")
    page.get_by_label("Search").press_sequentially(LIBRARY_QUERY)  # typed, never submitted: htmx searches
    expect(page.get_by_role("status")).to_contain_text(f"matching “{LIBRARY_QUERY}”")
    expect(page).to_have_url(f"{demo_url}/library?q={LIBRARY_QUERY}")
    expect(page.locator("article.creative").first).to_contain_text(LIBRARY_QUERY, ignore_case=True)
    snap(page, screenshots / "library.png")


def test_audit(page: Page, demo_url: str, screenshots: Path) -> None:
    visit(page, f"{demo_url}/audit")
    expect(page.locator(f"tbody a[href='/campaigns/{CAMPAIGN}']").first).to_be_visible()
    snap(page, screenshots / "audit.png")


def test_budgets(page: Page, demo_url: str, screenshots: Path) -> None:
    visit(page, f"{demo_url}/admin/budgets")
    expect(page.get_by_role("heading", name="LLM budgets")).to_be_visible()
    expect(page.locator("tbody tr").first).to_be_visible()
    snap(page, screenshots / "budgets.png")


def test_the_html_report(page: Page, demo_run: DemoRun, screenshots: Path) -> None:
    report = demo_run.data_dir / "demo" / "report.html"
    page.goto(report.resolve().as_uri())
    expect(page.locator("h1")).to_have_text("Nudge demo report")
    expect(page.locator(".simulated")).to_contain_text("Simulated.")  # the outcomes say what they are
    for plot in page.locator("figure img").all():
        expect(plot).to_have_js_property("complete", value=True)
    assert page.locator("figure img").count() == 4  # profit curve, reliability diagram, lift, costs
    snap(page, screenshots / "report.png", height=REPORT_HEIGHT)
