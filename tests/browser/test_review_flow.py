"""The review workspace in a real browser: sign in, edit a draft until a guardrail blocks it, fix it, approve
and schedule it; a marketer cannot approve; a large campaign waits for a second approver; a post without
the CSRF token is refused; the library searches as you type. Screenshots of the main pages are saved on the
way.

Saving an edit and searching the library go through htmx: the tests check that the page was not reloaded
(a value set on ``window`` survives) and that the Content-Security-Policy refused nothing."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx
from playwright.sync_api import ConsoleMessage, Page, expect

from core.db import Database
from core.models import Role
from tests.web.seeding import BANNED, PASSWORD, add_campaign_in_review, add_creative, add_user

NewPage = Callable[[], Page]


def csp_violations(page: Page) -> list[str]:
    """The console messages of the policy refusing something on ``page`` (filled as the page runs)."""
    refused: list[str] = []

    def remember(message: ConsoleMessage) -> None:
        if "Content Security Policy" in message.text:
            refused.append(f"{page.url} {message.location}: {message.text[:60]}")

    page.on("console", remember)
    return refused


def mark_document(page: Page) -> None:
    """Set a value that only lives as long as this document: a reload or navigation loses it."""
    page.evaluate("window.nudgeSameDocument = true")


def same_document(page: Page) -> bool:
    return bool(page.evaluate("window.nudgeSameDocument === true"))


def sign_in(page: Page, url: str, username: str) -> None:
    page.goto(f"{url}/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()


def test_an_approver_fixes_a_blocked_draft_approves_and_schedules_it(
    server_url: str, postgres_db: Database, new_page: NewPage, screenshots: Path
) -> None:
    add_user(postgres_db, "ana", Role.APPROVER)
    variant_id = add_campaign_in_review(postgres_db)
    page = new_page()
    refused = csp_violations(page)

    sign_in(page, server_url, "ana")
    page.screenshot(path=screenshots / "flow-dashboard.png", full_page=True)
    page.get_by_role("link", name="Review queue").click()
    page.screenshot(path=screenshots / "flow-queue.png", full_page=True)
    page.get_by_role("link", name="Review Winter retention winter").click()
    expect(page.locator(f"#variant-{variant_id} .badge")).to_have_text("passes")
    expect(page.frame_locator("iframe.preview").get_by_text("Hi Alex")).to_be_visible()
    page.screenshot(path=screenshots / "flow-review.png", full_page=True)

    body = page.get_by_label("Body text")
    original = body.input_value()
    body.fill(original + BANNED)
    mark_document(page)
    page.get_by_role("button", name="Save and re-check").click()
    card = page.locator(f"#variant-{variant_id}")
    expect(card.get_by_role("status")).to_have_text("Saved. The guardrails checked the new copy: see the report below.")
    expect(card.locator(".badge")).to_have_text("blocked")
    expect(card.locator("mark").first).to_have_text("guaranteed")
    expect(page.frame_locator("iframe.preview").get_by_text("Hi Alex")).to_be_visible()  # the new card's frame
    assert same_document(page), "saving reloaded the page: htmx did not swap the card in place"
    assert page.url == f"{server_url}/campaigns/winter/review"
    page.screenshot(path=screenshots / "flow-review-blocked.png", full_page=True)
    page.get_by_role("button", name="Approve").focus()  # by keyboard: the page is operable without a mouse
    page.keyboard.press("Enter")
    expect(page.get_by_role("alert")).to_contain_text("blocked by their guardrail reports")

    page.go_back()
    page.reload()
    page.get_by_label("Body text").fill(original)
    page.get_by_role("button", name="Save and re-check").click()
    expect(page.locator(f"#variant-{variant_id} .badge")).to_have_text("passes")
    page.get_by_label("Comment (required to reject or request changes)").fill("Good to go")
    page.get_by_role("button", name="Approve").focus()
    page.keyboard.press("Enter")
    expect(page.get_by_role("status")).to_have_text("Approved.", timeout=15_000)

    page.get_by_label("Send at (UTC)").fill("2031-03-01T09:00")
    page.get_by_role("button", name="Schedule").click()
    expect(page.get_by_role("status")).to_have_text("Scheduled.")
    expect(page.locator("#scheduled-at")).to_have_text("sends 2031-03-01 09:00 UTC")
    page.screenshot(path=screenshots / "flow-campaign.png", full_page=True)
    assert refused == []


def test_a_marketer_sees_no_approve_button_and_a_direct_post_is_forbidden(
    server_url: str, postgres_db: Database, new_page: NewPage
) -> None:
    add_user(postgres_db, "sam", Role.MARKETER)
    add_campaign_in_review(postgres_db)
    page = new_page()

    sign_in(page, server_url, "sam")
    page.goto(f"{server_url}/campaigns/winter/review")
    expect(page.get_by_role("button", name="Save and re-check")).to_be_visible()
    expect(page.get_by_role("button", name="Approve")).to_have_count(0)
    status = page.evaluate(
        """async () => {
            const form = new FormData();
            form.append("csrf_token", document.querySelector("input[name=csrf_token]").value);
            return (await fetch("/campaigns/winter/approve", {method: "POST", body: new URLSearchParams(form)})).status;
        }"""
    )

    assert status == 403


def test_a_large_campaign_waits_for_a_second_approver(
    server_url: str, postgres_db: Database, new_page: NewPage, screenshots: Path
) -> None:
    add_user(postgres_db, "ana", Role.APPROVER)
    add_user(postgres_db, "ben", Role.APPROVER)
    add_campaign_in_review(postgres_db, treated=5000)
    ana, ben = new_page(), new_page()

    sign_in(ana, server_url, "ana")
    ana.goto(f"{server_url}/campaigns/winter/review")
    expect(ana.locator("#escalation")).to_contain_text("it treats 5,000 customers, more than 1,000")
    ana.get_by_role("button", name="Approve").click()
    expect(ana.get_by_role("status")).to_contain_text("needs a second approver")
    expect(ana.locator("#escalation")).to_contain_text("Approved so far by ana")
    ana.screenshot(path=screenshots / "flow-escalation.png", full_page=True)

    sign_in(ben, server_url, "ben")
    ben.goto(f"{server_url}/campaigns/winter/review")
    ben.get_by_role("button", name="Approve").click()
    expect(ben.get_by_role("status")).to_have_text("Approved.")


def test_a_post_without_the_csrf_token_is_refused(server_url: str, postgres_db: Database, new_page: NewPage) -> None:
    add_user(postgres_db, "ana", Role.APPROVER)
    add_campaign_in_review(postgres_db)
    page = new_page()
    sign_in(page, server_url, "ana")
    cookies = {c["name"]: c["value"] for c in page.context.cookies()}

    from_page = page.evaluate(
        """async () => (await fetch("/campaigns/winter/approve", {method: "POST",
            headers: {"Content-Type": "application/x-www-form-urlencoded"}, body: "comment=x"})).status"""
    )
    from_elsewhere = httpx.post(f"{server_url}/campaigns/winter/approve", data={"comment": "x"}, cookies=cookies)

    assert (from_page, from_elsewhere.status_code) == (403, 403)
    page.goto(f"{server_url}/campaigns/winter")
    expect(page.locator(".state").first).to_have_text("in review")


def test_the_library_searches_as_you_type_and_the_url_follows(
    server_url: str, postgres_db: Database, new_page: NewPage, screenshots: Path
) -> None:
    add_user(postgres_db, "vic", Role.VIEWER)
    add_creative(postgres_db, "cr-fiber", "Fiber upgrade thank-you", "Thanks for choosing fiber.")
    add_creative(postgres_db, "cr-winter", "Winter roaming pass", "Stay connected abroad this winter.")
    page = new_page()
    refused = csp_violations(page)
    sign_in(page, server_url, "vic")
    page.goto(f"{server_url}/library")
    expect(page.locator("article.creative")).to_have_count(2)
    mark_document(page)

    page.get_by_label("Search").press_sequentially("roaming")  # typed, never submitted

    expect(page.locator("article.creative")).to_have_count(1)
    expect(page.locator("article.creative h2")).to_contain_text("Winter roaming pass")
    expect(page.get_by_role("status")).to_have_text("1 item matching “roaming”")
    expect(page).to_have_url(f"{server_url}/library?q=roaming")
    assert same_document(page), "the search reloaded the page: htmx did not swap the results in"
    page.screenshot(path=screenshots / "flow-library.png", full_page=True)
    page.reload()  # the pushed URL is a real page
    expect(page.locator("article.creative")).to_have_count(1)
    expect(page.get_by_label("Search")).to_have_value("roaming")
    page.go_back()
    expect(page).to_have_url(f"{server_url}/library")
    expect(page.locator("article.creative")).to_have_count(2)
    assert refused == []


def test_a_refused_save_shows_why_and_keeps_what_was_typed(
    server_url: str, postgres_db: Database, new_page: NewPage
) -> None:
    add_user(postgres_db, "sam", Role.MARKETER)
    variant_id = add_campaign_in_review(postgres_db)
    page = new_page()
    refused = csp_violations(page)
    sign_in(page, server_url, "sam")
    page.goto(f"{server_url}/campaigns/winter/review")
    too_long = "A subject far longer than any inbox shows " * 3
    page.get_by_label("Subject").fill(too_long)
    mark_document(page)

    page.get_by_role("button", name="Save and re-check").click()

    expect(page.get_by_role("alert")).to_contain_text("the edited copy is not a valid draft")
    expect(page.get_by_role("alert")).to_contain_text("subject: String should have at most 78 characters")
    expect(page.get_by_label("Subject")).to_have_value(too_long)
    expect(page.locator(f"#variant-{variant_id} .badge")).to_have_text("passes")
    assert same_document(page)
    assert refused == []
