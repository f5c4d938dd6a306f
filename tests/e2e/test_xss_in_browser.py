"""An XSS corpus in prompts and completions executes nothing in real Chromium.

The payloads go where an attacker (or a model) could put them: the user's prompt and every
candidate, on a pairwise and a ranking task. The page must show them as text or as inert
Markdown: no dialog opens, no payload sets its marker, no event-handler attribute, script,
frame, SVG or `javascript:` link reaches the DOM, and the raw toggle shows the exact text.
"""

import pytest

from annotation.models import Judgment
from e2e.browser import login, shoot
from e2e.test_workbench_in_browser import (  # noqa: F401 (browser_page is a fixture)
    _wait_for_judgments,
    browser_page,
)
from factories import ProjectFactory, PromptFactory, member, multi_task, pair_task

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

MARK = "window.__xss = (window.__xss || 0) + 1"
CORPUS = [
    f'<img src=x onerror="{MARK}">',
    f"<script>{MARK}; alert(1)</script>",
    f"[click me](javascript:{MARK})",
    '<a href="javascript:alert(1)">plain link</a>',
    f'<svg onload="{MARK}"><circle r="5"/></svg>',
    f'![picture](x" onerror="{MARK})',
    '<iframe src="javascript:alert(1)"></iframe>',
    f'<details open ontoggle="{MARK}"><summary>s</summary></details>',
    f'<body onload="{MARK}">',
    "```html\n<script>alert(1)</script>\n```",
    f"[data](data:text/html,<script>{MARK}</script>)",
    f'<math><mtext><table><mglyph><style><img src=x onerror="{MARK}">',
]
PROMPT = "Summarise this: " + " ".join(CORPUS[:4])

# Everything the page has under <main> that could run code or load a document.
DANGER_JS = """() => {
  const root = document.querySelector('main') || document.body;
  const found = [];
  for (const el of root.querySelectorAll('*')) {
    for (const attr of el.attributes) {
      if (attr.name.toLowerCase().startsWith('on')) found.push(el.tagName + '[' + attr.name + ']');
      if (/^\\s*(javascript|data|vbscript):/i.test(attr.value)) {
        found.push(el.tagName + '=' + attr.value);
      }
    }
    if (['SCRIPT', 'IFRAME', 'OBJECT', 'EMBED', 'SVG', 'MATH', 'STYLE', 'BASE']
        .includes(el.tagName.toUpperCase())) found.push(el.tagName);
  }
  return found;
}"""


def _no_execution(page, dialogs: list[str], console_errors: list[str]) -> None:
    page.wait_for_timeout(300)  # let any deferred handler (img onerror, details toggle) fire
    assert dialogs == [], f"a payload opened a dialog: {dialogs}"
    assert page.evaluate("window.__xss") is None, "a payload ran"
    assert page.evaluate(DANGER_JS) == []
    assert console_errors == [], console_errors


def test_xss_corpus_in_prompts_and_completions_executes_nothing(live_server, browser_page):  # noqa: F811
    from playwright.sync_api import expect

    project = ProjectFactory(slug="xss-e2e")
    pair = pair_task(project, texts=(CORPUS[0] + "\n\n" + CORPUS[2], CORPUS[1] + CORPUS[4]))
    pair.prompt.messages = [{"role": "user", "content": PROMPT}]
    pair.prompt.save(update_fields=["messages"])
    ranking = multi_task(project, "ranking", ["\n\n".join(CORPUS[i::3]) for i in range(3)])
    ranking.prompt.messages = [
        {"role": "system", "content": CORPUS[6]},
        {"role": "user", "content": CORPUS[8] + CORPUS[9]},
    ]
    ranking.prompt.save(update_fields=["messages"])
    PromptFactory(project=project)  # a prompt with no task: nothing to show, nothing to break
    member(project, username="ann")

    page = browser_page
    dialogs: list[str] = []
    console_errors: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    login(page, live_server.url, "ann")  # (before it, the app's 403 probe of the session)
    page.on("console", lambda m: m.type == "error" and console_errors.append(m.text))

    expect(page.get_by_role("heading", name="Which response is better?")).to_be_visible()
    expect(page.get_by_test_id("candidate-A")).to_be_visible()
    _no_execution(page, dialogs, console_errors)
    # The prompt shows the markup as text, not as elements.
    expect(page.get_by_text("Summarise this:", exact=False)).to_contain_text("<img src=x")
    # Links that survive sanitising are inert text or http(s) only.
    hrefs = page.evaluate("[...document.querySelectorAll('main a')].map(a => a.href)")
    assert all(h.startswith(("http://", "https://", "mailto:")) for h in hrefs), hrefs
    # The raw toggle shows each candidate's exact text.
    panel = page.get_by_test_id("candidate-A")
    panel.get_by_role("button", name="Show raw text of response A").click()
    raw_text = panel.inner_text()
    assert CORPUS[0] in raw_text or CORPUS[1] in raw_text
    _no_execution(page, dialogs, console_errors)
    shoot(page, "xss-pair")

    page.locator("body").click(position={"x": 5, "y": 5})
    page.keyboard.press("3")
    page.keyboard.press("Enter")
    _wait_for_judgments(page, 1)

    expect(page.get_by_test_id("candidate-C")).to_be_visible()
    _no_execution(page, dialogs, console_errors)
    for label in "ABC":
        page.get_by_test_id(f"candidate-{label}").get_by_role(
            "button", name=f"Show raw text of response {label}"
        ).click()
    _no_execution(page, dialogs, console_errors)
    shoot(page, "xss-ranking")
    assert Judgment.objects.count() == 1
