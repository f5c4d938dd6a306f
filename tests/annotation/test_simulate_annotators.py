"""The simulated annotators judge through the real HTTP API with their hidden preference."""

import pytest
from django.core.management import call_command

from annotation.management.commands.simulate_annotators import preferred
from annotation.models import Judgment
from factories import ProjectFactory, member, pair_task

pytestmark = pytest.mark.django_db(transaction=True)


def test_simulated_annotators_prefer_shorter_replies_with_noise(live_server):
    project = ProjectFactory(slug="sim")
    for n in range(40):
        pair_task(project, texts=(f"short {n}", f"a much longer reply number {n} " * 3))
    alice, bob = member(project, username="sim-alice"), member(project, username="sim-bob")

    call_command(
        "simulate_annotators",
        f"--base-url={live_server.url}",
        f"--account={alice.username}:pw-for-tests",
        f"--account={bob.username}:pw-for-tests",
        "--limit=20",
        "--noise=0.1",
        "--seed=1",
    )

    judgments = list(Judgment.objects.select_related("chosen", "rejected"))
    # Alice stops after 20 holding the lease submit-and-next gave her: 39 are left judged.
    assert len(judgments) == 39
    assert {j.annotator_id for j in judgments} == {alice.pk, bob.pk}
    shorter_won = sum(len(j.chosen.content) < len(j.rejected.content) for j in judgments)
    assert 0.75 <= shorter_won / 39 < 1.0  # 90% expected; the noise is seeded
    assert all(j.time_spent_ms >= 3000 for j in judgments)


def test_shorter_means_fewer_words_then_fewer_characters():
    fewer_words = [{"content": "a b c"}, {"content": "abcdefghij klmnopqrst"}]
    assert preferred(fewer_words, "shorter") == 1  # two long words beat three short ones
    assert preferred(fewer_words, "longer") == 0
    same_words = [{"content": "abc de"}, {"content": "ab de"}]
    assert preferred(same_words, "shorter") == 1
    assert preferred([{"content": "same"}, {"content": "same"}], "shorter") == 0  # first shown
