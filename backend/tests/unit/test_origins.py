"""ALLOWED_ORIGINS entries are spelled as browsers send Origin, or refused."""

import pytest

from app.core.config import load_settings, origin_of
from app.core.errors import StartupError


@pytest.mark.parametrize(
    ("written", "origin"),
    [
        ("https://site.example/", "https://site.example"),
        ("HTTPS://Site.Example:443", "https://site.example"),
        ("http://site.example:80/", "http://site.example"),
        ("https://site.example:8443", "https://site.example:8443"),
        ("http://127.0.0.1:8000", "http://127.0.0.1:8000"),
        ("http://[::1]:3000/", "http://[::1]:3000"),
        ("https://bücher.example", "https://xn--bcher-kva.example"),
    ],
)
def test_an_origin_is_spelled_as_browsers_send_it(written: str, origin: str) -> None:
    assert origin_of(written) == origin


@pytest.mark.parametrize(
    "written",
    [
        "site.example",
        "https://site.example/chat",
        "https://site.example?x=1",
        "https://user@site.example",
        "ftp://site.example",
        "https://site.example:99999",
        "null",
        "*.site.example",
    ],
)
def test_what_is_not_an_origin_is_not_one(written: str) -> None:
    assert origin_of(written) is None


def test_settings_hold_normalised_origins_and_refuse_others_in_one_line() -> None:
    settings = load_settings(
        _env_file=None, allowed_origins="https://A.example/, http://b.example:80"
    )
    assert settings.allowed_origins == ["https://a.example", "http://b.example"]
    assert load_settings(_env_file=None, allowed_origins="*").allowed_origins == ["*"]
    with pytest.raises(StartupError) as refused:
        load_settings(_env_file=None, allowed_origins="https://a.example,a.example/chat")
    assert "\n" not in refused.value.message
    assert refused.value.message.startswith("Invalid setting ALLOWED_ORIGINS")
    assert "'a.example/chat' is not an origin" in refused.value.message
