from pathlib import Path

import pytest
import torch
from transformers import (
    AutoModelForCausalLM,
    AutoModelForSequenceClassification,
    AutoTokenizer,
    GenerationConfig,
)

from models_serving.tiny_models import (
    STOP_RATE,
    build_atomically,
    build_tiny_policy,
    build_tiny_reward,
    model_dir_is_complete,
    spoken_token,
)

CONVERSATION = [
    {"role": "system", "content": "You are Terse."},
    {"role": "user", "content": "What's 2+2? Answer in ONE word."},
]
# Starts with a word piece, capitals and punctuation: the cases where WordPiece lowercasing and
# splitting could merge tokens across the prompt/answer boundary.
ANSWER = {"role": "assistant", "content": "##Four, I THINK."}


@pytest.fixture(scope="module")
def policy_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_policy(tmp_path_factory.mktemp("models") / "policy")


@pytest.fixture(scope="module")
def reward_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_reward(tmp_path_factory.mktemp("models") / "reward")


def test_policy_loads_with_agreeing_special_tokens(policy_dir: Path) -> None:
    model = AutoModelForCausalLM.from_pretrained(policy_dir)
    tokenizer = AutoTokenizer.from_pretrained(policy_dir)
    generation = GenerationConfig.from_pretrained(policy_dir)

    assert sum(p.numel() for p in model.parameters()) < 10_000_000
    assert (tokenizer.bos_token, tokenizer.eos_token, tokenizer.pad_token) == (
        "[CLS]",
        "[SEP]",
        "[PAD]",
    )
    expected = (tokenizer.bos_token_id, tokenizer.eos_token_id, tokenizer.pad_token_id)
    assert (model.config.bos_token_id, model.config.eos_token_id, model.config.pad_token_id) == (
        expected
    )
    assert (generation.bos_token_id, generation.eos_token_id, generation.pad_token_id) == expected
    assert generation.do_sample  # a request's temperature only applies when sampling


def test_policy_generates_from_the_chat_template(policy_dir: Path) -> None:
    model = AutoModelForCausalLM.from_pretrained(policy_dir)
    tokenizer = AutoTokenizer.from_pretrained(policy_dir)
    inputs = tokenizer.apply_chat_template(
        CONVERSATION, add_generation_prompt=True, return_tensors="pt", return_dict=True
    )
    output = model.generate(**inputs, max_new_tokens=5, do_sample=False)
    assert output.shape[1] > inputs["input_ids"].shape[1]


@pytest.mark.parametrize("model_dir", ["policy_dir", "reward_dir"])
def test_tokenizer_emits_no_token_type_ids(model_dir: str, request: pytest.FixtureRequest) -> None:
    tokenizer = AutoTokenizer.from_pretrained(request.getfixturevalue(model_dir))
    assert "token_type_ids" not in tokenizer("hello world")
    rendered = tokenizer.apply_chat_template(CONVERSATION, return_dict=True, tokenize=True)
    assert "token_type_ids" not in rendered


def test_policy_tokenizer_prepends_bos_only(policy_dir: Path) -> None:
    tokenizer = AutoTokenizer.from_pretrained(policy_dir)
    ids = tokenizer("Hello there")["input_ids"]
    assert ids[0] == tokenizer.bos_token_id
    assert ids[-1] != tokenizer.eos_token_id


def test_tokenizer_does_not_truncate_to_the_shipped_128(policy_dir: Path) -> None:
    tokenizer = AutoTokenizer.from_pretrained(policy_dir)
    long_message = [{"role": "user", "content": "word " * 300}]
    encoded = tokenizer.apply_chat_template(long_message, tokenize=True, return_dict=True)
    assert len(encoded["input_ids"]) > 300


def test_chat_template_renders_roles_and_generation_prompt(policy_dir: Path) -> None:
    tokenizer = AutoTokenizer.from_pretrained(policy_dir)
    without = tokenizer.apply_chat_template(CONVERSATION, tokenize=False)
    with_prompt = tokenizer.apply_chat_template(
        CONVERSATION, tokenize=False, add_generation_prompt=True
    )
    assert without == "[CLS]system: You are Terse.[SEP]user: What's 2+2? Answer in ONE word.[SEP]"
    assert with_prompt == without + "assistant:"


@pytest.mark.parametrize("model_dir", ["policy_dir", "reward_dir"])
def test_prompt_tokens_are_a_prefix_of_prompt_and_answer(
    model_dir: str, request: pytest.FixtureRequest
) -> None:
    tokenizer = AutoTokenizer.from_pretrained(request.getfixturevalue(model_dir))
    prompt = tokenizer.apply_chat_template(
        CONVERSATION, add_generation_prompt=True, tokenize=True, return_dict=True
    )["input_ids"]
    full = tokenizer.apply_chat_template([*CONVERSATION, ANSWER], tokenize=True, return_dict=True)[
        "input_ids"
    ]
    assert full[: len(prompt)] == prompt
    assert full[-1] == tokenizer.eos_token_id
    # Lowercasing is the BERT vocabulary's, but the answer still round-trips as words.
    answer = tokenizer.decode(full[len(prompt) :], skip_special_tokens=True)
    assert answer.replace(" ", "") == "##four,ithink."


def test_reward_model_scores_one_scalar_per_sequence(reward_dir: Path) -> None:
    model = AutoModelForSequenceClassification.from_pretrained(reward_dir)
    tokenizer = AutoTokenizer.from_pretrained(reward_dir)
    conversations = [
        [*CONVERSATION, {"role": "assistant", "content": "four"}],
        [*CONVERSATION, {"role": "assistant", "content": "it is four, obviously, as always"}],
    ]
    batch = tokenizer.apply_chat_template(
        conversations, tokenize=True, return_dict=True, return_tensors="pt", padding=True
    )
    with torch.no_grad():
        scores = model(**batch).logits
    assert scores.shape == (2, 1)
    assert torch.isfinite(scores).all()


def test_policy_weights_follow_the_seed(tmp_path: Path) -> None:
    def weights(seed: int, name: str) -> torch.Tensor:
        model_dir = build_tiny_policy(tmp_path / name, seed=seed)
        return AutoModelForCausalLM.from_pretrained(model_dir).model.embed_tokens.weight

    assert torch.equal(weights(1, "a"), weights(1, "b"))
    assert not torch.equal(weights(1, "a"), weights(2, "c"))


def test_build_atomically_replaces_and_never_leaves_half_a_model(tmp_path: Path) -> None:
    target = tmp_path / "policy"
    build_atomically(build_tiny_policy, target)
    assert model_dir_is_complete(target)

    def crash(out_dir: Path) -> Path:
        (out_dir / "config.json").write_text("{}")
        raise KeyboardInterrupt  # as if killed mid-build

    with pytest.raises(KeyboardInterrupt):
        build_atomically(crash, target)
    assert model_dir_is_complete(target)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["policy"]

    build_atomically(lambda out_dir: build_tiny_policy(out_dir, seed=3), target)
    assert model_dir_is_complete(target)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["policy"]


def test_model_dir_is_complete_needs_config_and_weights(tmp_path: Path) -> None:
    assert not model_dir_is_complete(tmp_path / "missing")
    (tmp_path / "config.json").write_text("{}")
    assert not model_dir_is_complete(tmp_path)
    (tmp_path / "model.safetensors").write_bytes(b"")
    assert model_dir_is_complete(tmp_path)


def test_policy_stops_at_the_calibrated_rate_and_says_whole_words(policy_dir: Path) -> None:
    model = AutoModelForCausalLM.from_pretrained(policy_dir)
    tokenizer = AutoTokenizer.from_pretrained(policy_dir)
    inputs = tokenizer.apply_chat_template(
        CONVERSATION, add_generation_prompt=True, return_tensors="pt", return_dict=True
    )
    with torch.no_grad():
        probs = model(**inputs).logits[0, -1].softmax(-1)  # (vocab,)
    assert probs[tokenizer.eos_token_id] == pytest.approx(STOP_RATE, rel=0.3)
    vocab = tokenizer.get_vocab()
    unspoken = [
        i for token, i in vocab.items() if i != tokenizer.eos_token_id and not spoken_token(token)
    ]
    assert probs[unspoken].sum() < 1e-6
    # Sampled as the server samples (the saved generation config: full distribution, no top-k).
    generation = GenerationConfig.from_pretrained(policy_dir)
    assert generation.top_k == 0 and generation.min_new_tokens == 1
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        batch = inputs["input_ids"].repeat(64, 1)
        output = model.generate(batch, max_new_tokens=24, generation_config=generation)
    replies = output[:, batch.shape[1] :]
    ended = (replies == tokenizer.eos_token_id).any(dim=1)
    assert 0.6 < ended.float().mean() < 1.0  # most end before 24 tokens (expected: 88%)
    lengths = {int((row != tokenizer.eos_token_id).cumprod(0).sum()) for row in replies}
    assert len(lengths) > 8  # lengths vary, so "shorter" means something
    text = tokenizer.decode(replies[0], skip_special_tokens=True)
    assert len(text.split()) == int((replies[0] != tokenizer.eos_token_id).cumprod(0).sum())
