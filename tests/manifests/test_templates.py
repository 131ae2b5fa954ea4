"""`*.yaml.j2` rendering: sandboxed Jinja2, strict undefined, errors with their line."""

from __future__ import annotations

import pytest

from aivault_ops.manifests.templates import TemplateProblem, render

HINT = "(define it in the Project's environments.<env>.values and pass --env)"


def _problem(text: str, **values: object) -> TemplateProblem:
    with pytest.raises(TemplateProblem) as caught:
        render(text, name="credentials/x.yaml.j2", values=values)
    return caught.value


def test_values_are_substituted_and_the_text_kept_verbatim() -> None:
    text = "a: {{ host }}\n# {{ environment }}\nb: [{% for p in ports %}{{ p }},{% endfor %}]\n"
    rendered = render(
        text, name="x.yaml.j2", values={"host": "acme", "environment": "prod", "ports": [1, 2]}
    )
    assert rendered == "a: acme\n# prod\nb: [1,2,]\n"


def test_trailing_newline_is_kept() -> None:
    assert render("a: 1\n\n", name="x", values={}) == "a: 1\n\n"


def test_no_autoescaping() -> None:
    assert render("v: '{{ s }}'", name="x", values={"s": "<&>"}) == "v: '<&>'"


def test_undefined_value_is_an_error_with_its_line() -> None:
    problem = _problem("a: 1\nb: 2\nc: {{ shop_host }}\n", environment="prod")
    assert (problem.message, problem.line) == (f"'shop_host' is undefined {HINT}", 3)


def test_undefined_attribute_is_an_error_too() -> None:
    problem = _problem("a: 1\nb: {{ shop.host }}\n", shop={"name": "x"})
    assert problem.line == 2
    assert problem.message == f"'dict object' has no attribute 'host' {HINT}"


def test_undefined_inside_a_filter_or_test_is_an_error() -> None:
    problem = _problem("a: 1\n\nb: {{ missing | upper }}\n")
    assert (problem.message, problem.line) == (f"'missing' is undefined {HINT}", 3)


def test_undefined_used_in_a_condition_is_an_error() -> None:
    """A missing value never silently takes the `else` branch (which could widen a policy)."""
    problem = _problem("{% if strict %}\nhosts: [a]\n{% else %}\nhosts: ['*']\n{% endif %}\n")
    assert (problem.message, problem.line) == (f"'strict' is undefined {HINT}", 1)


def test_syntax_error_names_its_line() -> None:
    problem = _problem("a: 1\nb: {{ host }\n")
    assert (problem.message, problem.line) == ("template syntax error: unexpected '}'", 2)


def test_unclosed_block_is_a_syntax_error() -> None:
    problem = _problem("{% if x %}\na: 1\n")
    assert problem.message == (
        "template syntax error: Unexpected end of template. Jinja was looking for the following"
        " tags: 'elif' or 'else' or 'endif'. The innermost block that needs to be closed is 'if'."
    )
    assert problem.line == 1


def test_the_sandbox_refuses_unsafe_attribute_access() -> None:
    problem = _problem("a: 1\nb: {{ ''.__class__.__mro__ }}\n")
    assert (problem.message, problem.line) == (
        "template error: access to attribute '__class__' of 'str' object is unsafe.",
        2,
    )


def test_the_sandbox_refuses_mutation() -> None:
    problem = _problem("a: {{ items.append(3) }}\n", items=[1, 2])
    assert problem.message == (
        "template error: access to attribute 'append' of 'list' object is unsafe."
    )
    assert problem.line == 1


@pytest.mark.parametrize(
    "statement",
    ["{% include 'x.yaml' %}", "{% import 'x.j2' as x %}", "{% extends '/etc/passwd' %}"],
)
def test_include_and_import_read_no_files(statement: str) -> None:
    problem = _problem(f"a: 1\n{statement}\n")
    assert (problem.message, problem.line) == (
        "template error: include and import are not available in manifest templates",
        2,
    )
