"""Which template variables must be bound to secrets."""

from __future__ import annotations

from aivault_ops.resolve.templates import template_variables


def test_header_templates_read_secrets() -> None:
    auth = {"header": {"header_name": "authorization", "value_template": "Bearer {{secret}}"}}
    assert template_variables(auth) == {"secret"}


def test_hmac_request_values_are_not_secrets() -> None:
    template = "t={{timestamp}},v1={{signature}},b={{signature_b64}},x={{other}}"
    auth = {"hmac": {"algorithm": "sha256", "header_name": "x-sig", "value_template": template}}
    assert template_variables(auth) == {"other"}
