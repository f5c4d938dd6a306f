"""Simulated annotators for closed-loop tests and demos: real logins, real HTTP API.

Each account logs in through `auth/login/` (session + CSRF, as the browser does) and judges
its queue with submit-and-next, following a hidden preference with noise: by default the
shorter reply wins 90% of the time. "Shorter" is fewer words, then fewer characters, as a
reader would count; the simulator sees nothing but the texts the API shows. That is the signal
a reward model must recover.
"""

import random
from typing import cast

import httpx
from django.core.management.base import BaseCommand, CommandError

PREFERENCES = ("shorter", "longer")


def reply_length(text: str) -> tuple[int, int]:
    """How long a reply reads: its words, then its characters (the hidden preference's score)."""
    return len(text.split()), len(text)


def preferred(candidates: list[dict], preference: str) -> int:
    """Index of the candidate the hidden preference picks (ties: the first shown)."""
    lengths = [reply_length(c["content"]) for c in candidates]
    target = min(lengths) if preference == "shorter" else max(lengths)
    return lengths.index(target)


def answer_for(assignment: dict, preference: str, noise: float, rng: random.Random) -> dict:
    """A judgment following the preference, flipped with probability ``noise``."""
    candidates = assignment["candidates"]
    pick = preferred(candidates, preference)
    if rng.random() < noise:
        pick = 1 - pick if len(candidates) == 2 else rng.randrange(len(candidates))
    if assignment["interface"] == "ranking":
        order = sorted(range(len(candidates)), key=lambda i: reply_length(candidates[i]["content"]))
        if preference == "longer":
            order.reverse()
        order.remove(pick)
        return {"ranking": [candidates[i]["label"] for i in [pick, *order]]}
    scale = assignment["scale"]
    winner = "AB"[pick]
    strong = [p for p in scale if p["winner"] == winner]
    strongest = max(strong, key=lambda p: p["strength"])
    return {
        "choice": strongest["value"]
        if rng.random() < 0.5
        else min(strong, key=lambda p: p["strength"])["value"]
    }


class Command(BaseCommand):
    help = "Judge the queue through the HTTP API as annotator accounts with a hidden preference."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--base-url", default="http://127.0.0.1:8000")
        parser.add_argument(
            "--account", action="append", required=True, help="username:password (repeat)"
        )
        parser.add_argument("--limit", type=int, default=100, help="Judgments per account.")
        parser.add_argument("--preference", choices=PREFERENCES, default="shorter")
        parser.add_argument("--noise", type=float, default=0.1, help="Share of flipped choices.")
        parser.add_argument("--seed", type=int, default=0)

    def handle(self, *args, **o) -> None:
        total = 0
        for index, account in enumerate(o["account"]):
            username, _, password = account.partition(":")
            rng = random.Random(f"{o['seed']}:{index}")
            total += self.annotate(o["base_url"], username, password, o, rng)
        self.stdout.write(f"{total} judgments submitted")

    def annotate(self, base: str, username: str, password: str, o: dict, rng) -> int:
        with httpx.Client(base_url=base, timeout=30) as client:
            client.get("/api/v1/auth/csrf/")
            csrf = {"X-CSRFToken": cast(str, client.cookies.get("csrftoken", ""))}
            login = client.post(
                "/api/v1/auth/login/",
                json={"username": username, "password": password},
                headers=csrf,
            )
            if login.status_code != 200:
                raise CommandError(f"{username} could not log in: {login.text[:200]}")
            csrf = {"X-CSRFToken": cast(str, client.cookies.get("csrftoken", ""))}
            assignment = client.get("/api/v1/assignments/next/").json()["assignment"]
            done = 0
            while assignment is not None and done < o["limit"]:
                body = {
                    **answer_for(assignment, o["preference"], o["noise"], rng),
                    "idempotency_key": f"sim-{username}-{assignment['id']}",
                    "time_spent_ms": rng.randint(3000, 20000),
                }
                reply = client.post(
                    f"/api/v1/assignments/{assignment['id']}/submit-and-next/",
                    json=body,
                    headers=csrf,
                )
                if reply.status_code not in (200, 201):
                    raise CommandError(f"{username}: submit refused: {reply.text[:200]}")
                done += 1
                assignment = reply.json()["next"]
            return done
