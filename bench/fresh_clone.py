"""How long the README's two commands take from a fresh clone.

Full run: clone this repository into a temp dir, time `make setup` (everything `make run`
does before starting the supervisor), then time `make run` until the web server answers,
then `make test`. `--quick` times the warm path instead: `make setup` again in this
checkout (what a second `make run` costs) — under a minute.
The last line printed is one JSON object of figures (seconds).
"""

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def timed(cmd: list[str], cwd: Path, env: dict | None = None) -> float:
    started = time.monotonic()
    subprocess.run(cmd, cwd=cwd, env=env, check=True, stdout=sys.stderr, stderr=sys.stderr)
    return round(time.monotonic() - started, 1)


def time_until_up(cwd: Path, port: int, timeout: float = 600) -> float:
    """Start `make run` and time until /healthz answers, then stop the whole process group."""
    started = time.monotonic()
    env = {**os.environ, "PORT": str(port)}
    proc = subprocess.Popen(
        ["make", "run"],
        cwd=cwd,
        env=env,
        start_new_session=True,
        stdout=sys.stderr,
        stderr=sys.stderr,
    )
    try:
        while time.monotonic() - started < timeout:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2)
                return round(time.monotonic() - started, 1)
            except OSError:
                time.sleep(0.5)
        raise TimeoutError("make run did not answer in time")
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        proc.wait(timeout=60)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="warm re-run of `make setup` only")
    parser.add_argument("--skip-test", action="store_true", help="do not time `make test`")
    parser.add_argument("--port", type=int, default=8765)
    args = parser.parse_args()
    if args.quick:
        print(json.dumps({"make_setup_warm_s": timed(["make", "setup"], ROOT)}))
        return
    with tempfile.TemporaryDirectory(prefix="arbiter-fresh-") as tmp:
        clone = Path(tmp) / "arbiter"
        subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
        figures = {"make_setup_fresh_s": timed(["make", "setup"], clone)}
        figures["make_run_until_up_s"] = time_until_up(clone, args.port)
        figures["make_setup_warm_s"] = timed(["make", "setup"], clone)
        if not args.skip_test:
            figures["make_test_s"] = timed(["make", "test"], clone)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
