import pytest
from django.core.exceptions import ValidationError

from models_serving.validators import validate_base_url, validate_sampling_params


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8011/v1",
        "https://vllm.internal/v1",
        "http://vllm:8000/v1/",
        "http://[::1]:8000/v1",
        "HTTPS://Models.Example.com",
    ],
)
def test_http_and_https_urls_with_a_host_are_accepted(url):
    validate_base_url(url)


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("ftp://models.example.com/v1", "http:// or https://"),
        ("javascript:alert(1)", "http:// or https://"),
        ("file:///etc/passwd", "http:// or https://"),
        ("gopher://127.0.0.1:6379/_INFO", "http:// or https://"),
        ("//models.example.com/v1", "http:// or https://"),
        ("models.example.com/v1", "http:// or https://"),
        ("", "http:// or https://"),
        ("http://", "host"),
        ("http:///v1", "host"),
        ("https://:8000/v1", "host"),
        ("http://user:pass@vllm:8000/v1", "credentials"),
        ("http://vllm:8000/v1?key=1", "query"),
        ("http://vllm:8000/v1#x", "fragment"),
        ("http://vllm:99999/v1", "not a valid URL"),
        ("http://vllm:port/v1", "not a valid URL"),
        ("http://vllm:0/v1", "not a valid URL"),
        ("http://[::1/v1", "not a valid URL"),
        ("http://vllm\x00:8000/v1", "control characters"),
        ("http://vllm:8000/v1\n", "control characters"),
        ("http://vl lm:8000/v1", "spaces"),
    ],
)
def test_other_urls_are_refused_with_a_reason(url, reason):
    with pytest.raises(ValidationError) as caught:
        validate_base_url(url)
    assert reason in caught.value.messages[0]


@pytest.mark.parametrize(
    "params",
    [{}, {"temperature": 0}, {"temperature": 0.7, "top_p": 0.95, "max_tokens": 512}],
)
def test_known_sampling_params_in_range_are_accepted(params):
    validate_sampling_params(params)


@pytest.mark.parametrize(
    ("params", "reason"),
    [
        ([], "must be an object"),
        ("temperature=1", "must be an object"),
        ({"seed": 1}, "unknown keys seed"),
        ({"temperature\x00": 1}, "unknown keys"),
        ({"temperature": -0.1}, "between 0 and 2"),
        ({"temperature": 2.5}, "between 0 and 2"),
        ({"temperature": "1"}, "must be a number"),
        ({"temperature": True}, "must be a number"),
        ({"temperature": float("nan")}, "between"),
        ({"top_p": 0}, "between"),
        ({"top_p": 1.5}, "between"),
        ({"max_tokens": 0}, "between 1"),
        ({"max_tokens": 1.5}, "an integer"),
        ({"max_tokens": 10**9}, "between 1"),
    ],
)
def test_bad_sampling_params_are_refused_with_a_reason(params, reason):
    with pytest.raises(ValidationError) as caught:
        validate_sampling_params(params)
    assert reason in caught.value.messages[0]
