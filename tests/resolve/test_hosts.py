"""Host names and `*.` wildcards: exactly one extra label, never a suffix trick."""

from __future__ import annotations

import pytest

from aivault_ops.resolve.hosts import covered, host_matches, is_wildcard, wildcard_problem


@pytest.mark.parametrize(
    ("pattern", "host", "expected"),
    [
        ("api.openai.com", "api.openai.com", True),
        ("api.openai.com", "API.openai.com", False),
        ("api.openai.com", "api.openai.com.evil.example", False),
        ("api.openai.com", "evilapi.openai.com", False),
        ("*.myshopify.com", "acme.myshopify.com", True),
        ("*.myshopify.com", "acme-staging.myshopify.com", True),
        ("*.myshopify.com", "myshopify.com", False),
        ("*.myshopify.com", ".myshopify.com", False),
        ("*.myshopify.com", "a.b.myshopify.com", False),
        ("*.myshopify.com", "acmemyshopify.com", False),
        ("*.myshopify.com", "acme.myshopify.com.evil.example", False),
        ("*.myshopify.com", "acme.evil-myshopify.com", False),
        ("*.myshopify.com", "*.myshopify.com", True),
    ],
)
def test_host_matches(pattern: str, host: str, expected: bool) -> None:
    assert host_matches(pattern, host) is expected


def test_is_wildcard() -> None:
    assert is_wildcard("*.myshopify.com")
    assert not is_wildcard("api.openai.com")
    assert not is_wildcard("api.*.com")


def test_covered_by_any_pattern() -> None:
    patterns = ("api.example.com", "*.tenants.example.com")
    assert covered("api.example.com", patterns)
    assert covered("acme.tenants.example.com", patterns)
    assert not covered("tenants.example.com", patterns)
    assert not covered("www.example.com", patterns)
    assert not covered("api.example.com", ())


@pytest.mark.parametrize("pattern", ["*.com", "*.*.example.com", "*.ex*ample.com"])
def test_too_broad_or_malformed_wildcards_are_refused(pattern: str) -> None:
    assert wildcard_problem(pattern) is not None


@pytest.mark.parametrize("host", ["*.myshopify.com", "*.zendesk.com", "api.example.com", "com"])
def test_good_patterns_and_concrete_hosts_pass(host: str) -> None:
    assert wildcard_problem(host) is None


def test_a_wildcard_never_matches_its_apex_or_two_labels() -> None:
    assert not host_matches("*.zendesk.com", "zendesk.com")
    assert not host_matches("*.zendesk.com", "a.b.zendesk.com")
    assert host_matches("*.zendesk.com", "acme.zendesk.com")
