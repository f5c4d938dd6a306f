"""Live multi-turn chat in real Chromium against the real tiny model (`transformers serve`).

The stream endpoint is a plain async view, so the app runs under uvicorn on config.asgi (as in
production), not under the WSGI live server the other browser tests use. Screenshots at
1280x800 and 390 px wide land in tests/e2e/screenshots/ (git-ignored).
"""

import re
import secrets
import socket
import threading
import time
from collections.abc import Iterator

import pytest
from django.conf import settings
from django.db import connection

from annotation.models import Completion, Conversation, Judgment, Prompt
from e2e.browser import DESKTOP, chromium, login, shoot
from factories import ProjectFactory, member
from models_serving.local_server import local_model_server, served_model_name
from models_serving.models import ModelEndpoint, ModelVersion

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True), pytest.mark.timeout(300)]
SECRET_LABEL = "secret-version-label"
SECRET_ENDPOINT = "secret-endpoint-name"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def local_model(tiny_models) -> Iterator[str]:
    with local_model_server(settings.TINY_POLICY_DIR, _free_port()) as base_url:
        yield base_url


@pytest.fixture
def asgi_server(transactional_db) -> Iterator[str]:
    """Arbiter as `make run` serves it: uvicorn on config.asgi, here in a thread of this process."""
    import uvicorn

    import config.asgi

    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            config.asgi.application,
            host="127.0.0.1",
            port=port,
            log_level="warning",
            lifespan="off",
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=15)


@pytest.fixture(autouse=True)
def _pool_closed_after_each_test():
    yield
    # The app's threads hand their connections back to the pool, which would otherwise keep
    # them open and stop the test database from being dropped at the end.
    if hasattr(connection, "close_pool"):
        connection.close_pool()


@pytest.fixture
def browser_page():
    with chromium() as browser:
        page = browser.new_page(viewport=DESKTOP)
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.on("dialog", lambda dialog: errors.append(f"dialog: {dialog.message}"))
        yield page
        assert errors == [], f"JavaScript errors in the page: {errors}"


def _tiny_version(base_url: str) -> ModelVersion:
    endpoint = ModelEndpoint.objects.create(
        name=f"{SECRET_ENDPOINT}-{secrets.token_hex(3)}",
        base_url=base_url,
        kind="transformers-serve",
        default_sampling_params={"max_tokens": 48, "temperature": 1.0},
    )
    return ModelVersion.objects.create(
        endpoint=endpoint,
        model_name=served_model_name(settings.TINY_POLICY_DIR),
        label=SECRET_LABEL,
    )


def _both_replies_have_text(page) -> None:
    page.wait_for_function(
        """() => ['A', 'B'].every(label => {
            const body = document.querySelector(`[data-testid=candidate-${label}] .markdown`);
            return body && body.textContent.trim().length > 0;
        })""",
        timeout=60_000,
    )


def _wait_for(predicate, page, what: str, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        page.wait_for_timeout(100)


def test_three_turn_chat_continues_from_the_chosen_reply(asgi_server, local_model, browser_page):
    from playwright.sync_api import expect

    project = ProjectFactory(slug="chat-e2e", name="Chat project")
    version = _tiny_version(local_model)
    project.buffer_model_version = version  # the version live sessions sample
    project.save(update_fields=["buffer_model_version"])
    member(project, username="ann")
    page = browser_page
    finished = []
    page.on("requestfinished", lambda request: finished.append(request))
    login(page, asgi_server, "ann")

    page.get_by_role("link", name="Chat").click()
    expect(page.get_by_role("heading", name="Live chat")).to_be_visible()
    expect(page.get_by_text("No open conversations.")).to_be_visible()
    shoot(page, "chat-list")
    page.get_by_role("button", name="Start a new conversation").focus()
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"/chat/\d+$"))
    session = Conversation.objects.get()
    assert page.url == f"{asgi_server}/chat/{session.pk}"

    questions = ["Hello, who are you?", "Tell me more about that.", "And finally?"]
    keys = ["1", "5", "2"]  # A much better, B much better, A better
    chosen_replies: list[str] = []
    for n, (question, key) in enumerate(zip(questions, keys, strict=True)):
        box = page.get_by_label("Your message" if n == 0 else "Your next message")
        expect(box).to_be_focused()
        page.keyboard.type(question)
        page.keyboard.press("Enter")  # sends; the two replies start streaming

        expect(page.get_by_role("heading", name="Which reply is better?")).to_be_visible()
        _both_replies_have_text(page)
        if n == 0:
            shoot(page, "chat-judging")
        page.locator("body").click(position={"x": 5, "y": 5})  # focus the page, not a button
        page.keyboard.press(key)
        expect(page.get_by_role("radio", checked=True)).to_have_count(1)
        page.keyboard.press("Enter")

        _wait_for(lambda n=n: Judgment.objects.count() == n + 1, page, f"judgment {n + 1}")
        judgment = Judgment.objects.order_by("-id").first()
        # The reply joins the conversation once the stream has stored it.
        transcript = page.get_by_role("list", name="Conversation")
        expect(transcript.get_by_test_id("chat-message")).to_have_count(2 * (n + 1))
        winner = Completion.objects.get(pk=judgment.chosen_id)
        assert winner.content.strip(), "the chosen reply is empty"
        assert winner.prompt.conversation_id == session.pk
        chosen_replies.append(winner.content)

    # Each turn's prefix is the conversation so far, through the reply chosen before it.
    turns = list(Prompt.objects.filter(conversation=session).order_by("id"))
    assert len(turns) == 3
    for n, turn in enumerate(turns):
        expected = []
        for question, reply in zip(questions[:n], chosen_replies[:n], strict=True):
            expected += [
                {"role": "user", "content": question},
                {"role": "assistant", "content": reply},
            ]
        expected.append({"role": "user", "content": questions[n]})
        assert turn.messages == expected, f"turn {n + 1} does not continue from the chosen reply"
    session.refresh_from_db()
    assert session.head.role == "assistant" and session.head.content == chosen_replies[-1]
    # The judgments say which was chosen as shown: keys 1 and 2 pick A, key 5 picks B.
    for judgment, picked in zip(Judgment.objects.order_by("id"), "ABA", strict=True):
        assert judgment.chosen_id == judgment.shown_order["AB".index(picked)]

    expect(page.get_by_label("Your next message")).to_be_focused()
    shoot(page, "chat-three-turns")
    page.get_by_role("button", name="End conversation").click()
    expect(page.get_by_text("This conversation has ended.")).to_be_visible()
    session.refresh_from_db()
    assert session.status == "ended"

    # Blind: neither the page nor any API response names the model, its version or endpoint.
    secrets_ = [
        served_model_name(settings.TINY_POLICY_DIR),
        "tiny-policy",
        SECRET_LABEL,
        SECRET_ENDPOINT,
        local_model,
    ]
    html = page.content()
    assert not [s for s in secrets_ if s in html]
    bodies = [
        request.response().text()
        for request in finished
        if "/api/" in request.url and request.response() is not None
    ]
    assert any("event: delta" in body for body in bodies), "no stream response was seen"
    leaked = [s for s in secrets_ for body in bodies if s in body]
    assert leaked == []


def test_model_down_shows_a_clear_message_and_keeps_the_message(
    asgi_server, local_model, browser_page
):
    from playwright.sync_api import expect

    project = ProjectFactory(slug="chat-down")
    version = _tiny_version(f"http://127.0.0.1:{_free_port()}/v1")  # nothing listens there
    project.buffer_model_version = version
    project.save(update_fields=["buffer_model_version"])
    member(project, username="ann")
    page = browser_page
    login(page, asgi_server, "ann")
    page.goto(f"{asgi_server}/chat")
    page.get_by_role("button", name="Start a new conversation").click()

    # A draft survives a reload before it is sent.
    box = page.get_by_label("Your message")
    box.fill("Are you there?")
    page.wait_for_timeout(200)
    page.reload()
    expect(page.get_by_label("Your message")).to_have_value("Are you there?")
    page.get_by_label("Your message").press("Enter")

    alert = page.get_by_role("alert")
    expect(alert).to_have_text(
        "The model server is not answering; your conversation is saved, try again."
    )
    expect(page.get_by_role("list", name="Conversation")).to_contain_text("Are you there?")
    shoot(page, "chat-model-down")

    # The server comes back: trying again continues from the same turn.
    version.endpoint.base_url = local_model
    version.endpoint.save(update_fields=["base_url"])
    page.get_by_role("button", name="Try again").click()
    expect(page.get_by_role("heading", name="Which reply is better?")).to_be_visible()
    expect(page.get_by_test_id("stream-state-A")).to_contain_text("Finished", timeout=60_000)
    expect(page.get_by_test_id("stream-state-B")).to_contain_text("Finished", timeout=60_000)
    assert Prompt.objects.filter(conversation__project=project).count() == 1


def test_three_replies_per_message_are_ranked_and_the_best_continues(
    asgi_server, local_model, browser_page
):
    from playwright.sync_api import expect

    project = ProjectFactory(slug="chat-three")
    project.buffer_model_version = _tiny_version(local_model)
    project.save(update_fields=["buffer_model_version"])
    member(project, username="ann")
    page = browser_page
    login(page, asgi_server, "ann")
    page.goto(f"{asgi_server}/chat")
    page.get_by_label("Replies per message").select_option("3")
    page.get_by_role("button", name="Start a new conversation").click()
    expect(page).to_have_url(re.compile(r"/chat/\d+$"))
    session = Conversation.objects.get()
    assert session.candidates_per_turn == 3

    page.get_by_label("Your message").fill("Name three colours.")
    page.get_by_label("Your message").press("Enter")
    expect(page.get_by_role("heading", name="Rank the replies, best first")).to_be_visible()
    for label in "ABC":
        expect(page.get_by_test_id(f"stream-state-{label}")).to_contain_text(
            "Finished", timeout=60_000
        )
    shoot(page, "chat-three-replies")
    # Keyboard: focus response C in the ranking and move it to the top, then submit.
    item = page.get_by_test_id("rank-item-C")
    item.focus()
    page.keyboard.press("Alt+ArrowUp")
    page.keyboard.press("Alt+ArrowUp")
    expect(page.get_by_test_id("rank-item-C")).to_have_attribute(
        "aria-label", "Response C, rank 1 of 3"
    )
    page.get_by_role("button", name="Submit").click()

    _wait_for(lambda: Judgment.objects.count() == 1, page, "the ranking")
    judgment = Judgment.objects.get()
    assert judgment.kind == "ranking" and judgment.ranking[0] == judgment.shown_order[2]
    assert judgment.chosen_id == judgment.shown_order[2]
    winner = Completion.objects.get(pk=judgment.chosen_id)
    transcript = page.get_by_role("list", name="Conversation")
    expect(transcript.get_by_test_id("chat-message")).to_have_count(2)
    session.refresh_from_db()
    assert session.head.completion_id == winner.pk
    assert Completion.objects.filter(prompt__conversation=session).count() == 3
