"""A typo in a provider's `auth` names the field and its form, and nothing cascades."""

from __future__ import annotations

import pytest
from cli_support import InitProject, run_cli

_AUTH = """  auth:
    header:
      header_name: authorization
      value_template: "Bearer {{secret}}"
"""


@pytest.mark.parametrize(
    ("auth", "expected"),
    [
        (
            _AUTH.replace("value_template", "value_templte"),
            "providers/example-api.yaml:12:7: E-SCHEMA-UNKNOWN-FIELD: unknown field"
            " 'value_templte' in spec.auth.header (did you mean 'value_template'?)"
            " (allowed: header_name, value_template)",
        ),
        (
            _AUTH.replace("header_name", "headerName"),
            "providers/example-api.yaml:11:7: E-SCHEMA-UNKNOWN-FIELD: unknown field"
            " 'headerName' in spec.auth.header (did you mean 'header_name'?)"
            " (allowed: header_name, value_template)",
        ),
        (
            _AUTH.replace("    header:", "    heder:"),
            "providers/example-api.yaml:10:5: E-SCHEMA-UNKNOWN-FIELD: spec.auth: unknown form"
            " 'heder' (did you mean 'header'?) (one of: aws_sig_v4, header, hmac, multi_header,"
            " multi_query, o_auth2, path, query, or the strings basic / mtls)",
        ),
        (
            _AUTH.replace('      value_template: "Bearer {{secret}}"\n', ""),
            "providers/example-api.yaml:11:7: E-SCHEMA-MISSING-FIELD: spec.auth.header:"
            " missing required field 'value_template'",
        ),
    ],
    ids=["field-typo", "camel-case", "form-typo", "missing-field"],
)
def test_one_root_cause_per_typo(project: InitProject, auth: str, expected: str) -> None:
    provider = project.root / "providers" / "example-api.yaml"
    text = provider.read_text()
    assert _AUTH in text
    provider.write_text(text.replace(_AUTH, auth))
    result = run_cli("validate", cwd=project.root)
    assert (result.returncode, result.stdout.splitlines()) == (1, [expected])
