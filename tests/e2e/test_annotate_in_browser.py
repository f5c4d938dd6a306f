"""An annotator logs in and judges pairs with the keyboard in real Chromium."""

import json

import pytest
from django.core.management import call_command

from annotation.models import Judgment
from e2e.browser import DESKTOP, chromium
from factories import ProjectFactory, member, pair_task

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def browser_page():
    with chromium() as browser:
        yield browser.new_page(viewport=DESKTOP)


def _wait_for_judgments(page, count: int) -> None:
    for _ in range(100):
        if Judgment.objects.count() >= count:
            return
        page.wait_for_timeout(100)
    raise AssertionError(f"expected {count} judgments, have {Judgment.objects.count()}")


def test_annotator_judges_three_pairs_with_keyboard_then_export_loads(
    live_server, browser_page, tmp_path
):
    from playwright.sync_api import expect

    project = ProjectFactory(slug="e2e")
    for n in range(3):
        pair_task(project, texts=(f"Reply one for question {n}", f"Reply two for question {n}"))
    member(project, username="ann")
    page = browser_page

    page.goto(f"{live_server.url}/")
    expect(page).to_have_url(f"{live_server.url}/login")
    page.get_by_label("Username").fill("ann")
    page.get_by_label("Password").fill("pw-for-tests")
    page.get_by_role("button", name="Sign in").click()

    for n, key in enumerate(["1", "2", "5"]):
        expect(page.get_by_role("heading", name="Which response is better?")).to_be_visible()
        expect(page.get_by_test_id("candidate-A")).to_contain_text("Reply")
        page.locator("body").click(position={"x": 5, "y": 5})  # focus the page, not a text box
        page.keyboard.press(key)
        expect(page.get_by_role("radio", checked=True)).to_have_count(1)
        page.keyboard.press("Enter")
        _wait_for_judgments(page, n + 1)

    expect(page.get_by_text("No more pairs")).to_be_visible()
    assert "secret-model" not in page.content()

    out = tmp_path / "e2e.jsonl"
    call_command("export_dataset", project="e2e", format="trl-preference", out=str(out))
    import datasets

    loaded = datasets.load_dataset("json", data_files=str(out), split="train")
    assert loaded.num_rows == 3
    strengths = sorted(json.loads(line)["strength"] for line in out.read_text().splitlines())
    assert strengths == [1, 2, 2]  # keys 1, 2, 5: much better, better, much better
