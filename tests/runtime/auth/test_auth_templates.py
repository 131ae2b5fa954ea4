"""Auth templates: plain `{{ name }}` templates are substituted without Jinja2, with
exactly Jinja2's result; everything else still goes through the sandbox."""

from __future__ import annotations

import itertools
import subprocess
import sys
from collections.abc import Callable
from functools import partial

import pytest

from aivault_ops.runtime.auth import templates
from aivault_ops.runtime.auth.base import AuthUnavailable
from aivault_ops.runtime.auth.templates import JINJA_GLOBALS, Rendered, render
from aivault_ops.secret import Secret

PLAIN = {
    "secret": "sk-abc{{x}}\\",
    "api_key": "K",
    "range": "R",
    "true": "T",
    "if": "I",
    "_u": "U",
}
VARIABLES = {name: Secret(value) for name, value in PLAIN.items()}
PIECES = (
    "Bearer ", "{{secret}}", "{{ secret }}", "{{  api_key}}", "{{true}}", "{{ None }}", "{{if}}",
    "{{x}}", "{{range}}", "{{dict}}", "{{_u}}", "{{secret|upper}}", "{{ secret.upper() }}",
    "{#c#}", "{%raw%}", "{", "}", " ", "\t", "é€", "\\", "%", "\r\n",
)  # fmt: skip


def _outcome(call: Callable[[], Rendered]) -> tuple[str, object]:
    try:
        result = call()
    except AuthUnavailable as problem:
        return ("refused", problem.message)
    return ("rendered", (result.value.reveal_text(), result.used))


def _through_jinja(template: str) -> tuple[str, object]:
    def call() -> Rendered:
        value, used = templates._render_jinja(template, VARIABLES, "header 'x'")
        return Rendered(Secret(templates.check_injected_value(value, "header 'x'")), used)

    return _outcome(call)


TEMPLATES = [
    *("".join(parts) for size in (1, 2) for parts in itertools.product(PIECES, repeat=size)),
    "Bearer {{secret}} {{api_key}}",
    "{{_u}}-{{ secret }}-%",
    "k={{api_key}}&s={{secret}}",
]


def test_every_template_renders_as_jinja2_renders_it() -> None:
    for template in TEMPLATES:
        ours = _outcome(partial(render, template, VARIABLES, where="header 'x'"))
        assert ours == _through_jinja(template), template


@pytest.mark.parametrize(
    ("template", "plain"),
    [
        ("Bearer {{secret}}", True),
        ("{{ api_key }}:{{secret}}", True),
        ("static", True),
        ("{{secret|upper}}", False),
        ("{{ true }}", False),
        ("{{ range }}", False),
        ("{{ missing }}", False),
        ("a{b", False),
        ("{{- secret }}", False),
    ],
)
def test_only_plain_placeholder_templates_skip_jinja2(template: str, plain: bool) -> None:
    assert (templates._substitute(template, VARIABLES) is not None) is plain


def test_the_jinja_globals_list_matches_jinja2() -> None:
    assert frozenset(templates._environment().globals) == JINJA_GLOBALS


def test_undefined_variables_are_refused_by_name() -> None:
    with pytest.raises(AuthUnavailable) as caught:
        render("Bearer {{ nope }}", VARIABLES, where="header 'x'")
    assert caught.value.message == "header 'x' uses undefined variable(s) nope"


def test_a_plain_template_does_not_import_jinja2() -> None:
    code = (
        "import sys\n"
        "from aivault_ops.runtime.auth.templates import render\n"
        "from aivault_ops.secret import Secret\n"
        "rendered = render('Bearer {{secret}}', {'secret': Secret('s' * 9)}, where='h')\n"
        "assert rendered.value.reveal_text() == 'Bearer sssssssss'\n"
        "print('jinja2' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
