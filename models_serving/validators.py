"""Checks on what admins type into model endpoints: shared by the models, the admin and the API."""

import math
from urllib.parse import urlsplit

from django.core.exceptions import ValidationError

SAMPLING_LIMITS: dict[str, tuple[type, float, float]] = {
    # name: (type, lowest, highest): the OpenAI API's ranges, narrowed to what vLLM accepts
    # (it refuses top_p=0 with a 400 on every request).
    "temperature": (float, 0.0, 2.0),
    "top_p": (float, 0.01, 1.0),
    "max_tokens": (int, 1, 131_072),
}


def validate_base_url(value: str) -> None:
    """An http(s) URL with a host and nothing that would hide or leak a secret.

    Private and loopback hosts are allowed on purpose: model servers live on the cluster's own
    network, and only admins may set this.
    """
    if any(ord(ch) < 0x20 or ch.isspace() or ch == "\x7f" for ch in value):
        raise ValidationError("must not contain spaces or control characters")
    try:
        parts = urlsplit(value)
        port = parts.port  # raises ValueError for a port that is not a number in range
    except ValueError as exc:
        raise ValidationError("is not a valid URL") from exc
    if parts.scheme not in ("http", "https"):
        raise ValidationError("must start with http:// or https://")
    if not parts.hostname:
        raise ValidationError("must name a host, e.g. http://vllm:8000/v1")
    if parts.username is not None or parts.password is not None:
        raise ValidationError("must not carry credentials; put the key in api_key")
    if parts.query or parts.fragment:
        raise ValidationError("must not have a query string or fragment")
    if port == 0:
        raise ValidationError("is not a valid URL")


def validate_sampling_params(value: object) -> None:
    """Default sampling params: only the known keys, each a number in its documented range."""
    if not isinstance(value, dict):
        raise ValidationError("must be an object such as {'temperature': 0.7}")
    unknown = sorted(str(k) for k in value if k not in SAMPLING_LIMITS)
    if unknown:
        allowed = ", ".join(SAMPLING_LIMITS)
        raise ValidationError(f"unknown keys {', '.join(unknown)}; allowed: {allowed}")
    for name, number in value.items():
        kind, low, high = SAMPLING_LIMITS[name]
        # bool is an int in Python, and JSON true is never what someone meant here.
        valid_types = (int,) if kind is int else (int, float)
        if isinstance(number, bool) or not isinstance(number, valid_types):
            raise ValidationError(f"{name} must be {'an integer' if kind is int else 'a number'}")
        if not math.isfinite(number) or not low <= number <= high:
            raise ValidationError(f"{name} must be between {low:g} and {high:g}")


def validate_no_control_chars(value: str) -> None:
    """Model names and labels: printable text (Postgres rejects NUL; a newline is a typo)."""
    if any(ord(ch) < 0x20 or ch == "\x7f" for ch in value):
        raise ValidationError("must not contain control characters")
