"""Ranking, rating, thumbs and the researcher console in real Chromium, with screenshots.

Screenshots: see e2e/browser.py.
"""

import pytest
from rest_framework.test import APIClient

from annotation.models import Assignment, Judgment, Role, Round
from e2e.browser import DESKTOP, chromium, login, shoot
from factories import ProjectFactory, member, multi_task, pair_task
from models_serving.models import ModelEndpoint, ModelVersion

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def browser_page():
    with chromium() as browser:
        page = browser.new_page(viewport=DESKTOP)
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        yield page
        assert errors == [], f"JavaScript errors in the page: {errors}"


def _wait_for_judgments(page, count: int) -> None:
    for _ in range(100):
        if Judgment.objects.count() >= count:
            return
        page.wait_for_timeout(100)
    raise AssertionError(f"expected {count} judgments, have {Judgment.objects.count()}")


def _shown(task) -> dict[str, int]:
    """Completion ids by the label the annotator saw them under (the server shuffles)."""
    order = Assignment.objects.get(task=task).shown_order
    return dict(zip("ABCDEFGH", order, strict=False))


def test_ranking_by_keyboard_and_by_drag(live_server, browser_page):
    from playwright.sync_api import expect

    project = ProjectFactory(slug="rank-e2e")
    texts = ["Paris is the capital of France.", "Lyon, **surely**.", "It is `Paris`."]
    first = multi_task(project, "ranking", texts)
    second = multi_task(project, "ranking", texts)
    member(project, username="ann")
    page = browser_page
    login(page, live_server.url, "ann")

    expect(
        page.get_by_role("heading", name="Rank the responses from best to worst")
    ).to_be_visible()
    expect(page.locator(".candidate strong")).to_have_text("surely")  # markdown, rendered
    shoot(page, "ranking")
    item_c = page.get_by_test_id("rank-item-C")
    item_c.focus()
    page.keyboard.press("Alt+ArrowUp")
    page.keyboard.press("Alt+ArrowUp")
    expect(page.get_by_test_id("ranking-announcement")).to_have_text(
        "Response C moved to position 1 of 3."
    )
    page.keyboard.press("ArrowDown")  # focus A
    page.keyboard.press("ArrowDown")  # focus B
    page.keyboard.press("Space")
    page.keyboard.press("Home")
    page.keyboard.press("Space")
    expect(page.get_by_test_id("ranking-announcement")).to_have_text(
        "Response B dropped at position 1 of 3."
    )
    page.keyboard.press("Enter")
    _wait_for_judgments(page, 1)

    ids = _shown(first)
    assert Judgment.objects.get(task=first).ranking == [ids["B"], ids["C"], ids["A"]]

    # The next task starts in display order A, B, C: drag C onto A with the mouse.
    expect(page.get_by_test_id("rank-item-A")).to_have_attribute(
        "aria-label", "Response A, rank 1 of 3"
    )
    page.get_by_test_id("rank-item-C").drag_to(page.get_by_test_id("rank-item-A"))
    expect(page.get_by_test_id("rank-item-C")).to_have_attribute(
        "aria-label", "Response C, rank 1 of 3"
    )
    page.get_by_role("button", name="Submit").click()
    _wait_for_judgments(page, 2)
    ids = _shown(second)
    assert Judgment.objects.get(task=second).ranking == [ids["C"], ids["A"], ids["B"]]
    expect(page.get_by_role("heading", name="No more tasks to judge right now")).to_be_visible()


def test_rating_and_thumbs_with_a_draft_that_survives_reload(live_server, browser_page):
    from playwright.sync_api import expect

    project = ProjectFactory(slug="rate-e2e", rating_aspects=["accuracy"])
    rating = multi_task(
        project, "rating", ["Water boils at 100 C at sea level.", "Water boils at 50 C."]
    )
    thumbs = multi_task(project, "thumbs", ["The capital of Australia is Sydney."])
    member(project, username="ann")
    page = browser_page
    login(page, live_server.url, "ann")

    expect(page.get_by_role("heading", name="Rate each response")).to_be_visible()
    expect(
        page.get_by_text("Excellent: accurate, clear and especially helpful").first
    ).to_be_visible()
    shoot(page, "rating")
    for label, overall, accuracy in [("A", "5", "5"), ("B", "1", "1")]:
        panel = page.get_by_test_id(f"candidate-{label}")
        panel.get_by_role("group", name=f"Overall rating of response {label}").get_by_role(
            "radio"
        ).first.focus()
        page.keyboard.press(overall)
        panel.get_by_role("group", name="Accuracy").get_by_role("radio").first.focus()
        page.keyboard.press(accuracy)
    page.keyboard.press("Enter")
    _wait_for_judgments(page, 1)
    ids = _shown(rating)
    assert Judgment.objects.get(task=rating).ratings == {
        str(ids["A"]): {"overall": 5, "accuracy": 5},
        str(ids["B"]): {"overall": 1, "accuracy": 1},
    }

    expect(page.get_by_role("heading", name="Is this response good?")).to_be_visible()
    page.locator("body").click(position={"x": 5, "y": 5})
    page.keyboard.press("2")
    page.keyboard.press("e")
    editor = page.get_by_label("Your improved response A")
    expect(editor).to_be_focused()
    editor.fill("The capital of Australia is Canberra.")
    page.get_by_label("Comment (optional)").fill("wrong city")
    page.wait_for_timeout(200)
    page.reload()  # nothing typed is lost
    expect(
        page.get_by_text("Your unsent work on this task was restored from this device.")
    ).to_be_visible()
    expect(page.get_by_label("Your improved response A")).to_have_value(
        "The capital of Australia is Canberra."
    )
    expect(page.get_by_role("radio", name="Bad response")).to_have_attribute("aria-checked", "true")
    shoot(page, "thumbs")
    page.get_by_role("button", name="Submit").click()
    _wait_for_judgments(page, 2)
    judgment = Judgment.objects.get(task=thumbs)
    assert judgment.thumbs_up is False
    assert judgment.rewrite == "The capital of Australia is Canberra."
    assert judgment.comment == "wrong city"
    expect(page.get_by_role("heading", name="No more tasks to judge right now")).to_be_visible()
    assert (
        page.evaluate("Object.keys(localStorage).filter(k => k.startsWith('arbiter.draft.'))") == []
    )


def _judge_pairs(project, usernames: list[str], choices: list[int]) -> None:
    """Annotators judge through the API, so the quality report has something to plot."""
    for username, choice in zip(usernames, choices, strict=True):
        client = APIClient()
        client.force_authenticate(member(project, username=username))
        for n in range(4):
            assignment = client.get("/api/v1/assignments/next/").json()["assignment"]
            if assignment is None:
                break
            body = {"choice": choice if n % 2 else 3, "idempotency_key": f"{username}-key-{n}"}
            url = f"/api/v1/assignments/{assignment['id']}/judgment/"
            assert client.post(url, body, format="json").status_code == 201


def test_researcher_creates_a_round_and_reads_the_quality_plots(live_server, browser_page):
    from playwright.sync_api import expect

    project = ProjectFactory(slug="console-e2e", name="Console project")
    for n in range(4):
        pair_task(project, overlap=3, texts=(f"Short {n}", f"A much longer reply number {n}"))
    _judge_pairs(project, ["ann", "bob", "cyd"], [1, 5, 2])
    endpoint = ModelEndpoint.objects.create(name="local", base_url="http://127.0.0.1:9/v1")
    version = ModelVersion.objects.create(
        endpoint=endpoint, model_name="tiny-policy", label="base v1"
    )
    started = Round.objects.create(
        project=project,
        name="Earlier round",
        status=Round.Status.GENERATING,
        generation_total=120,
        generation_done=80,
        generation_failed=6,
    )
    started.model_versions.add(version)
    member(project, role=Role.RESEARCHER, username="rita")
    page = browser_page
    login(page, live_server.url, "rita")

    page.get_by_role("link", name="Rounds").click()
    expect(page.get_by_role("heading", name="Console project: rounds")).to_be_visible()
    progress = page.get_by_role("progressbar", name="Generation of Earlier round")
    expect(progress).to_have_attribute("aria-valuetext", "80 of 120 generated (66%), 6 failed")

    page.get_by_role("button", name="Create round").click()  # nothing filled in
    expect(page.get_by_label("Name")).to_have_attribute("aria-invalid", "true")
    page.get_by_label("Name").fill("Second round")
    page.get_by_label("base v1").check()
    page.get_by_label("Prompts").fill("2")
    page.get_by_label("Top p").fill("5")
    page.get_by_role("button", name="Create round").click()
    top_p_error = page.locator("#round-top_p-error")
    expect(top_p_error).to_contain_text("top_p must be between")
    page.get_by_label("Top p").fill("0.9")
    page.get_by_role("button", name="Create round").click()
    expect(page.get_by_role("heading", name="Second round")).to_be_visible()
    expect(page.get_by_role("button", name="Start Second round")).to_be_visible()
    shoot(page, "rounds")

    page.get_by_role("link", name="Quality").click()
    expect(page.get_by_role("img", name="Position bias", exact=False)).to_be_visible()
    expect(page.get_by_role("table", name="Per-annotator numbers")).to_contain_text("bob")
    shoot(page, "quality")
