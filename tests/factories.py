import factory
from django.contrib.auth import get_user_model

from annotation.models import Completion, Membership, Project, Prompt, Role, Task, TaskCandidate


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    password = factory.django.Password("pw-for-tests")


class ProjectFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Project

    slug = factory.Sequence(lambda n: f"project-{n}")
    name = factory.Sequence(lambda n: f"Project {n}")
    guidelines = "Pick the better answer."


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Membership

    project = factory.SubFactory(ProjectFactory)
    user = factory.SubFactory(UserFactory)
    role = Role.ANNOTATOR


class PromptFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Prompt

    project = factory.SubFactory(ProjectFactory)
    messages = factory.Sequence(lambda n: [{"role": "user", "content": f"Question number {n}?"}])


class CompletionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Completion

    prompt = factory.SubFactory(PromptFactory)
    candidate_index = factory.Sequence(lambda n: n)
    content = factory.Sequence(lambda n: f"Answer number {n}.")
    model_name = "secret-model-v1"
    sampling_params = factory.LazyFunction(lambda: {"temperature": 1.0})


def pair_task(project: Project, *, overlap: int = 1, texts: tuple[str, str] | None = None) -> Task:
    """A prompt with two candidates and the pairwise task over them."""
    prompt = PromptFactory(project=project)
    texts = texts or (f"First answer to {prompt.pk}", f"Second answer to {prompt.pk}")
    completions = [
        CompletionFactory(prompt=prompt, candidate_index=i, content=t) for i, t in enumerate(texts)
    ]
    task = Task.objects.create(project=project, prompt=prompt, overlap=overlap)
    for i, c in enumerate(completions):
        TaskCandidate.objects.create(task=task, completion=c, position=i)
    return task


def member(project: Project, role: Role = Role.ANNOTATOR, username: str | None = None):
    user = UserFactory(username=username) if username else UserFactory()
    MembershipFactory(project=project, user=user, role=role)
    return user


def multi_task(project: Project, interface: str, texts: list[str], *, overlap: int = 1) -> Task:
    """A task of any interface over len(texts) candidates."""
    prompt = PromptFactory(project=project)
    completions = [
        CompletionFactory(prompt=prompt, candidate_index=i, content=t) for i, t in enumerate(texts)
    ]
    task = Task.objects.create(project=project, prompt=prompt, overlap=overlap, interface=interface)
    for i, c in enumerate(completions):
        TaskCandidate.objects.create(task=task, completion=c, position=i)
    return task
