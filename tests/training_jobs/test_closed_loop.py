"""Closed-loop proof on real parts (CPU, tiny models): three on-policy rounds end to end.

generate (Celery worker → local `transformers serve`) → simulated annotators through the
HTTP API (shorter replies win 90% of the time) → close → reward model + DPO jobs (the same
worker) → the DPO checkpoint registered as a model version → the next round samples it.
"""

import socket
import time
from statistics import mean

import pytest
from django.conf import settings
from django.core.management import call_command
from scipy.stats import mannwhitneyu

from annotation import rounds
from annotation.models import Completion, Project, Round
from factories import ProjectFactory, PromptFactory, member
from models_serving.local_server import local_model_server
from models_serving.models import ModelEndpoint, ModelVersion
from training_jobs.models import TrainingJob

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.django_db(transaction=True)]
PROMPTS = 40


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait(predicate, what: str, worker, timeout: float = 400):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        if worker["process"].poll() is not None:
            pytest.fail("celery worker died:\n" + worker["log"].read_text()[-3000:])
        time.sleep(1)
    pytest.fail(f"timed out waiting for {what}:\n" + worker["log"].read_text()[-4000:])


def _round_status(round_id: int) -> str:
    return Round.objects.values_list("status", flat=True).get(pk=round_id)


def test_three_rounds_close_the_loop(celery_worker, live_server, tiny_models):
    with local_model_server(settings.TINY_POLICY_DIR, _free_port(), pinned=False) as base_url:
        endpoint = ModelEndpoint.objects.create(
            name=settings.TRAINING_REGISTER_ENDPOINT,
            base_url=base_url,
            kind="transformers-serve",
            max_concurrency=4,
        )
        base = ModelVersion.objects.create(
            endpoint=endpoint, model_name=str(settings.TINY_POLICY_DIR), label="base"
        )
        project: Project = ProjectFactory(slug="loop")
        for _ in range(3 * PROMPTS):
            PromptFactory(project=project)
        annotators = [member(project, username=f"loop-{i}") for i in range(2)]
        first = rounds.round_create(
            project=project,
            name="r1",
            model_versions=[base],
            prompt_count=PROMPTS,
            sampling_params={"max_tokens": 24, "temperature": 1.0},
            train_on_close=True,
            continue_automatically=True,
        )
        rounds.round_start(round=first)

        chain = [first.pk]
        for index in range(3):
            current = chain[-1]
            _wait(
                lambda current=current: _round_status(current) == "collecting",
                f"round {index} generated",
                celery_worker,
            )
            call_command(
                "simulate_annotators",
                f"--base-url={live_server.url}",
                *[f"--account={a.username}:pw-for-tests" for a in annotators],
                "--limit=1000",
                f"--seed={index}",
            )
            assert rounds.round_close(round=Round.objects.get(pk=current), reason="by hand")
            if index == 2:
                break
            following = _wait(
                lambda current=current: (
                    Round.objects.filter(previous_id=current).values_list("pk", flat=True).first()
                ),
                f"round {index + 2} created after training",
                celery_worker,
                timeout=600,
            )
            chain.append(following)

        _wait(
            lambda: _round_status(chain[-1]) in ("done", "failed"),
            "last training",
            celery_worker,
            timeout=600,
        )

    rounds_ = [Round.objects.get(pk=pk) for pk in chain]
    for earlier, later in zip(rounds_, rounds_[1:], strict=False):
        dpo = TrainingJob.objects.get(round=earlier, kind="dpo")
        assert dpo.status == "succeeded", dpo.error + dpo.log_tail
        assert dpo.registered_version is not None
        assert list(later.model_versions.all()) == [dpo.registered_version]
        sampled = set(
            Completion.objects.filter(round=later).values_list("model_version_id", flat=True)
        )
        assert sampled == {dpo.registered_version.pk}  # each round sampled the previous one's

    # Issue 7 also asks for reward-model accuracy >= 0.8 on the simulated labels and a clear
    # gain in the hidden preference by the last round. With these tiny CPU models neither is
    # reached yet (measured: held-out accuracy 0.5-0.875 on 8-24 pairs, lengths not clearly
    # shorter; see the issue note), so they are reported here, not asserted.
    accuracies = []
    for round_ in rounds_:
        reward = TrainingJob.objects.get(round=round_, kind="reward_model")
        assert reward.status == "succeeded", reward.error + reward.log_tail
        assert reward.metrics["eval_rows"] > 0
        accuracies.append(reward.metrics["eval_accuracy"])

    def lengths(round_: Round) -> list[int]:
        texts = Completion.objects.filter(round=round_).values_list("content", flat=True)
        return [len(text) for text in texts]

    first_lengths, last_lengths = lengths(rounds_[0]), lengths(rounds_[-1])
    test = mannwhitneyu(last_lengths, first_lengths, alternative="less")
    print(
        f"reward-model held-out accuracy by round: {accuracies}; mean reply length "
        f"{mean(first_lengths):.1f} -> {mean(last_lengths):.1f} chars (p={test.pvalue:.3f})"
    )
