"""How fast the comparison page is usable after login, in real Chromium (issue 5: <= 500 ms).

Against the production server setup of bench/annotation_load.py (`config.serve` with two workers on
Postgres, DEBUG off, the built SPA): an annotator signs in; the login call (a deliberate
password-hash check) is timed on its own, and the clock for the target runs from its answer
until the pair is on screen and the scale's first point is enabled, i.e. until a digit key
would judge. Each sample is a fresh browser context (no cookies, no storage); the
first sample also has a cold HTTP cache for the bundle. The last line is one JSON object.

    .venv/bin/python bench/ui_interactive.py [--quick]
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import annotation_load as load  # noqa: E402  (the server and database helpers)

ROOT = load.ROOT
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
PASSWORD = "bench-ui-password"


def set_password(env: dict[str, str], username: str) -> None:
    code = (
        "from django.contrib.auth import get_user_model;"
        f"u = get_user_model().objects.get(username={username!r});"
        f"u.set_password({PASSWORD!r}); u.save()"
    )
    cmd = [load.PYTHON, "manage.py", "shell", "-c", code]
    subprocess.run(cmd, cwd=ROOT, env=env, check=True)


def one_login(browser, base_url: str, username: str) -> tuple[float, float, float]:
    """ms: navigation to the login form, the login call, its answer to a judgeable pair."""
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    started = time.perf_counter()
    page.goto(f"{base_url}/login")
    page.get_by_label("Username").wait_for()
    form_ms = (time.perf_counter() - started) * 1000
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    button = page.get_by_role("button", name="Sign in")
    started = time.perf_counter()
    with page.expect_response(lambda r: r.url.endswith("/api/v1/auth/login/")):
        button.click()
    logged_in = time.perf_counter()
    page.get_by_test_id("candidate-B").wait_for()
    page.wait_for_function(
        "() => { const r = document.querySelector('[role=radio]');"
        " return r && !r.disabled && r.getAttribute('aria-disabled') !== 'true'; }",
        polling="raf",
    )
    now = time.perf_counter()
    context.close()
    return form_ms, (logged_in - started) * 1000, (now - logged_in) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer samples (under a minute)")
    args = parser.parse_args()
    samples = 8 if args.quick else 40

    from playwright.sync_api import sync_playwright

    os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with tempfile.TemporaryDirectory(prefix="arbiter-bench-ui-") as var_dir:
        env = load.bench_env(var_dir)
        load.db_recreate()
        load.db_migrate(env)
        load.db_seed(env, tasks=500)
        set_password(env, "bench0")
        port = load.free_port()
        with load.server_running(env, port), sync_playwright() as pw:
            browser = pw.chromium.launch(
                executable_path=CHROMIUM, args=["--headless", "--no-sandbox", "--disable-gpu"]
            )
            base_url = f"http://127.0.0.1:{port}"
            results = [one_login(browser, base_url, "bench0") for _ in range(samples)]
            browser.close()

    form = [r[0] for r in results]
    login = [r[1] for r in results]
    interactive = [r[2] for r in results]
    ordered = sorted(interactive)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    print(f"login form shown: first {form[0]:.0f} ms, median {statistics.median(form):.0f} ms")
    print(f"login call (password hash check): median {statistics.median(login):.0f} ms")
    print(
        f"logged in to judgeable pair: first (cold) {interactive[0]:.0f} ms, "
        f"median {statistics.median(interactive):.0f} ms, p95 {p95:.0f} ms, "
        f"max {max(interactive):.0f} ms over {samples} fresh contexts (target <= 500 ms)"
    )
    print(
        json.dumps(
            {
                "samples": samples,
                "login_form_first_ms": round(form[0], 1),
                "login_call_p50_ms": round(statistics.median(login), 1),
                "interactive_cold_ms": round(interactive[0], 1),
                "interactive_p50_ms": round(statistics.median(interactive), 1),
                "interactive_p95_ms": round(p95, 1),
                "interactive_max_ms": round(max(interactive), 1),
            }
        )
    )


if __name__ == "__main__":
    main()
