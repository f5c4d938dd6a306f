"""The researcher and admin console in real Chromium: settings, guidelines, members and invites,
prompt import, exports and training jobs, with screenshots of each page.

Screenshots at 1280x800 and at a 390-px-wide phone size land in tests/e2e/screenshots/
(git-ignored) for a reviewer to look at.
"""

import json
import re
from pathlib import Path

import pytest

from annotation import exports, services
from annotation.models import ExportSnapshot, GuidelinesVersion, Project, Prompt, Role
from e2e.browser import DESKTOP, chromium, login, shoot
from factories import ProjectFactory, member, pair_task
from models_serving.models import ModelEndpoint, ModelVersion
from training_jobs.models import TrainingJob, TrainingTrigger

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True), pytest.mark.timeout(300)]


@pytest.fixture
def browser():
    """A Chromium whose pages each get their own cookies (one person per page)."""
    errors: list[str] = []
    with chromium() as launched:

        def new_page():
            page = launched.new_context(viewport=DESKTOP, accept_downloads=True).new_page()
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            return page

        yield new_page
    assert errors == [], f"JavaScript errors in the page: {errors}"


def test_researcher_changes_the_scale_and_an_annotator_sees_it(live_server, browser):
    from playwright.sync_api import expect

    project = ProjectFactory(slug="scale-e2e", name="Scale project")
    # Overlap 2: the researcher's own landing page claims a copy too.
    pair_task(project, overlap=2, texts=("Paris.", "Lyon."))
    member(project, Role.RESEARCHER, username="rita")
    member(project, username="ann")

    researcher = browser()
    login(researcher, live_server.url, "rita")
    researcher.get_by_role("link", name="Project").click()
    expect(researcher.get_by_role("heading", name="Scale project: settings")).to_be_visible()
    expect(researcher.get_by_role("radio", name="5-point with tie")).to_be_checked()

    # By keyboard: arrows move within the scale's radio group, Enter in a field submits.
    researcher.get_by_role("radio", name="5-point with tie").focus()
    researcher.keyboard.press("ArrowDown")
    expect(researcher.get_by_role("radio", name="8-point without tie")).to_be_checked()
    # A value the server refuses is explained next to its field; nothing is saved.
    researcher.get_by_label("Overlap").fill("0")
    researcher.keyboard.press("Enter")
    expect(researcher.locator("#settings-overlap-error")).to_contain_text(
        "greater than or equal to 1"
    )
    expect(researcher.get_by_label("Overlap")).to_have_attribute("aria-invalid", "true")
    project.refresh_from_db()
    assert (project.scale_kind, project.overlap) == ("five_point", 1)

    researcher.get_by_label("Overlap").fill("1")
    researcher.keyboard.press("Enter")
    expect(researcher.get_by_role("status")).to_have_text(
        "Settings saved. Annotators see them with their next task."
    )
    project.refresh_from_db()
    assert project.scale_kind == "eight_point"
    shoot(researcher, "console-settings")

    annotator = browser()
    login(annotator, live_server.url, "ann")
    scale = annotator.get_by_role("radiogroup", name="Which response is better")
    expect(scale.get_by_role("radio")).to_have_count(8)
    expect(scale.get_by_role("radio", name="A is far better")).to_be_visible()
    expect(scale.get_by_role("radio", name="Tie")).to_have_count(0)
    shoot(annotator, "compare-eight-point")

    # The researcher switches to a custom three-point scale; the annotator's next task uses it.
    researcher.get_by_role("radio", name="Custom").check()
    researcher.get_by_label("Point 1 label").fill("Left wins")
    researcher.get_by_label("Point 3 label").fill("Right wins")
    researcher.get_by_role("button", name="Save settings").click()
    expect(researcher.get_by_role("status")).to_contain_text("Settings saved")
    shoot(researcher, "console-settings-custom")
    pair_task(project, overlap=2, texts=("Rome.", "Milan."))
    scale.get_by_role("radio", name="A is far better").click()
    annotator.keyboard.press("Enter")
    expect(scale.get_by_role("radio")).to_have_count(3)
    expect(scale.get_by_role("radio", name="Left wins")).to_be_visible()
    expect(scale.get_by_role("radio", name="About the same")).to_be_visible()


def _judge_all(project: Project, username: str) -> None:
    annotator = member(project, username=username)
    n = 0
    while (assignment := services.assignment_claim_next(annotator=annotator)) is not None:
        services.judgment_submit(assignment=assignment, choice=1, idempotency_key=f"e2e-key-{n}")
        n += 1


def test_admin_works_through_the_console_pages(live_server, browser):
    from playwright.sync_api import expect

    project = services.project_create(
        slug="console-pages", name="Console pages", guidelines="Be fair."
    )
    for n in range(3):
        pair_task(project, texts=(f"Short {n}", f"A longer reply {n}"))
    _judge_all(project, "ann")
    member(project, Role.ADMIN, username="ada")
    endpoint = ModelEndpoint.objects.create(name="local", base_url="http://127.0.0.1:9/v1")
    registered = ModelVersion.objects.create(
        endpoint=endpoint, model_name="dpo-ckpt", label="dpo after round 1"
    )
    history = [
        {"step": s, "loss": 0.7 - s * 0.02, "rewards/accuracies": 0.5 + s * 0.02}
        for s in range(1, 16)
    ]
    TrainingJob.objects.create(
        project=project,
        kind=TrainingJob.Kind.DPO,
        status=TrainingJob.Status.SUCCEEDED,
        progress_step=15,
        progress_total=15,
        metrics={"eval_reward_accuracy": 0.8},
        metrics_history=history,
        registered_version=registered,
    )
    running = TrainingJob.objects.create(
        project=project,
        kind=TrainingJob.Kind.REWARD_MODEL,
        status=TrainingJob.Status.RUNNING,
        progress_step=4,
        progress_total=40,
        metrics_history=[{"step": s, "loss": 1 / s, "accuracy": 0.5} for s in range(1, 5)],
    )
    page = browser()
    login(page, live_server.url, "ada")

    # Guidelines: a new version, listed above the first.
    page.get_by_role("link", name="Project").click()
    sections = page.get_by_role("navigation", name="Project sections")
    sections.get_by_role("link", name="Guidelines").click()
    page.get_by_label("Guidelines", exact=True).fill(
        "Be fair. Prefer the shorter of two equally good replies."
    )
    page.get_by_role("button", name="Save as a new version").click()
    expect(page.get_by_role("status")).to_have_text(
        "Saved as version 2. New judgments record this version."
    )
    versions = page.get_by_role("region", name="Versions").get_by_role("listitem")
    expect(versions).to_have_count(2)
    expect(versions.first).to_contain_text("Version 2in force")
    assert GuidelinesVersion.objects.filter(project=project).count() == 2
    shoot(page, "console-guidelines")

    # Members: an admin invites someone new, who sets a password through the link and signs in.
    sections.get_by_role("link", name="Members").click()
    page.get_by_role("button", name="Add member").click()
    expect(page.locator("#member-username-error")).not_to_be_empty()
    page.get_by_label("Username", exact=True).fill("newbie")
    page.get_by_label("Role", exact=True).select_option("researcher")
    page.get_by_role("button", name="Add member").click()
    invite_url = page.get_by_label("Invitation link").input_value()
    expect(page.get_by_role("row", name="newbie Researcher")).to_be_visible()
    shoot(page, "console-members")
    newcomer = browser()
    newcomer.goto(invite_url)
    newcomer.get_by_label("New password").fill("a-long-new-password-1")
    newcomer.get_by_label("The same password again").fill("a-long-new-password-1")
    newcomer.get_by_role("button", name="Set password").click()
    expect(newcomer.get_by_role("heading", name="Your password is set")).to_be_visible()
    shoot(newcomer, "invite-accepted")
    newcomer.get_by_role("link", name="Sign in").click()
    login(newcomer, live_server.url, "newbie", "a-long-new-password-1")

    # Prompt import: good lines are stored, a bad one is reported with its line number.
    sections.get_by_role("link", name="Prompt import").click()
    lines = [{"prompt": "What is 2 + 2?"}, {"prompt": ""}, {"messages": "nope"}, {"prompt": "Hi"}]
    data = "\n".join(json.dumps(line) for line in lines).encode()
    page.get_by_label("Prompt file").set_input_files(
        {"name": "prompts.jsonl", "mimeType": "application/json", "buffer": data}
    )
    page.get_by_role("button", name="Import").click()
    report = page.get_by_role("region", name="Report for prompts.jsonl")
    expect(report.get_by_role("status")).to_have_text("2 prompts imported, 2 lines with errors.")
    expect(report.get_by_role("row")).to_have_count(3)
    expect(report.get_by_role("row").nth(1)).to_contain_text(re.compile(r"^2prompt"))
    assert Prompt.objects.filter(project=project, messages__0__content="Hi").exists()
    shoot(page, "console-prompts")

    # Exports: the admin creates one; the background job builds it while the page watches.
    page.get_by_role("link", name="Exports").click()
    page.get_by_role("checkbox", name="Version 1").check()
    page.get_by_role("button", name="Create export").click()
    expect(page.get_by_role("status")).to_contain_text("is being built")
    snapshot = ExportSnapshot.objects.get(project=project)
    assert snapshot.options["filters"]["guideline_versions"] == [1]
    exports.export_run(snapshot_id=snapshot.pk)  # what the Celery worker does
    card = page.get_by_role("listitem").filter(has_text=f"Export {snapshot.pk}")
    expect(card.get_by_text("Ready")).to_be_visible()
    expect(card).to_contain_text("3 rows")
    with page.expect_download() as download:
        card.get_by_role("link", name="Download").click()
    rows = Path(download.value.path()).read_text().splitlines()
    assert len(rows) == 3 and {"prompt", "chosen", "rejected"} <= set(json.loads(rows[0]))
    shoot(page, "console-exports")

    # Training: live status while the worker reports progress, curves, cancel, registered version.
    jobs_before = TrainingJob.objects.filter(project__slug=project.slug).count()
    page.get_by_role("link", name="Training").click()
    finished = page.get_by_role("listitem").filter(has_text="DPO policy job")
    bar = page.get_by_role("progressbar", name=f"Progress of Reward model job {running.pk}")
    expect(bar).to_have_attribute("aria-valuetext", "4 of 40 steps (10%)")
    TrainingJob.objects.filter(pk=running.pk).update(progress_step=20)
    expect(bar).to_have_attribute("aria-valuetext", "20 of 40 steps (50%)", timeout=8000)
    expect(finished).to_contain_text("Registered as model version dpo after round 1")
    finished.get_by_role("button", name="Show curves").click()
    expect(finished.get_by_role("img", name="Loss")).to_be_visible()
    expect(finished.get_by_role("img", name="Reward accuracy")).to_be_visible()
    shoot(page, "console-training")
    page.get_by_role("button", name=f"Cancel Reward model job {running.pk}").click()
    expect(
        page.get_by_role("listitem").filter(has_text=f"Reward model job {running.pk}")
    ).to_contain_text("Cancelled")
    running.refresh_from_db()
    assert running.status == TrainingJob.Status.CANCELLED

    # Schedule: a nightly reward-model trigger, made and checked by hand from the page.
    form = page.get_by_role("form", name="New trigger")
    form.get_by_role("textbox", name="Name").fill("nightly RM")
    form.get_by_label("On a cron schedule").check()
    form.get_by_role("textbox", name="Cron").fill("0 3 * * *")
    form.get_by_role("combobox", name="Time zone").fill("Europe/Berlin")
    form.get_by_role("checkbox", name="DPO policy").uncheck()
    form.get_by_role("checkbox", name="Reward model").check()
    form.get_by_label("Minimum new judgments").fill("1000")
    form.get_by_role("button", name="Create trigger").click()
    card = page.get_by_role("listitem").filter(has_text="nightly RM")
    expect(card).to_contain_text("0 3 * * *")
    trigger = TrainingTrigger.objects.get(project__slug=project.slug, name="nightly RM")
    assert (trigger.cron, trigger.cron_timezone, trigger.kinds) == (
        "0 3 * * *",
        "Europe/Berlin",
        ["reward_model"],
    )
    assert trigger.min_new_judgments == 1000
    card.get_by_role("button", name="Run now: nightly RM").click()
    # Far fewer than 1,000 new judgments: the check says so and starts nothing.
    expect(card.get_by_role("status")).to_contain_text("Run now:")
    trigger.refresh_from_db()
    assert trigger.last_result and trigger.last_result in card.get_by_role("status").inner_text()
    assert TrainingJob.objects.filter(project__slug=project.slug).count() == jobs_before
    shoot(page, "console-training-schedule")


def test_a_researcher_sees_what_their_role_allows(live_server, browser):
    from playwright.sync_api import expect

    project = ProjectFactory(slug="roles-e2e", name="Roles project")
    member(project, Role.RESEARCHER, username="rita")
    page = browser()
    login(page, live_server.url, "rita")
    page.goto(f"{live_server.url}/projects/roles-e2e/members")
    expect(page.get_by_role("row", name="rita Researcher")).to_be_visible()
    expect(page.get_by_role("button", name="Add member")).to_have_count(0)
    page.get_by_role("link", name="Exports").click()
    expect(page.get_by_text("Only the project's admins create exports")).to_be_visible()
    expect(page.get_by_role("button", name="Create export")).to_have_count(0)
