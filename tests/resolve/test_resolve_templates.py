"""Which template variables must be bound to secrets."""

from __future__ import annotations

from typing import Any

import pytest

from aivault_ops.diagnostics import Report
from aivault_ops.manifests.model import ManifestSource
from aivault_ops.manifests.yaml_positions import Positions
from aivault_ops.resolve import templates
from aivault_ops.resolve.templates import check_auth_templates, template_variables


def test_header_templates_read_secrets() -> None:
    auth = {"header": {"header_name": "authorization", "value_template": "Bearer {{secret}}"}}
    assert template_variables(auth) == {"secret"}


def test_hmac_request_values_are_not_secrets() -> None:
    template = "t={{timestamp}},v1={{signature}},b={{signature_b64}},x={{other}}"
    auth = {"hmac": {"algorithm": "sha256", "header_name": "x-sig", "value_template": template}}
    assert template_variables(auth) == {"other"}


def test_a_template_text_is_parsed_once(monkeypatch: pytest.MonkeyPatch) -> None:
    parsed: list[str] = []
    original = templates._PARSER.parse

    def counting(text: str) -> Any:
        parsed.append(text)
        return original(text)

    templates._variables.cache_clear()
    monkeypatch.setattr(templates._PARSER, "parse", counting)
    auth = {"header": {"header_name": "authorization", "value_template": "Key {{api_key}}"}}
    assert template_variables(auth) == {"api_key"}
    assert template_variables(auth) == {"api_key"}
    assert parsed == ["Key {{api_key}}"]


def test_a_bad_template_is_reported_every_time() -> None:
    auth = {"header": {"header_name": "authorization", "value_template": "Bearer {{secret"}}
    source = ManifestSource("providers/p.yaml", Positions())
    for _ in range(2):
        report = Report()
        assert not check_auth_templates(auth, source, ("spec", "auth"), report)
        assert [d.code for d in report] == ["E-AUTH-TEMPLATE"]
