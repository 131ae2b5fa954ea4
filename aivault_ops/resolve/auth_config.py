"""What `validate` can check of the per-request strategies without any secret value.

The runtime refuses these with 503 when a bundle loads; `validate` reports
them at their line instead:

- `hmac`: `algorithm` is `sha256` or `sha512` (`E-AUTH-ALGORITHM`), and
  `value_template` reads only `signature`, `signature_b64` and `timestamp`
  and at least one signature (`E-AUTH-TEMPLATE`);
- `aws_sig_v4`, `hmac` and `mtls` read the secret bound to the placeholder
  `secret` (a JSON object with `access_key_id` and `secret_access_key`; the
  key; a JSON object with `certificate` and `private_key`): a credential
  must bind it (`E-AUTH-SECRET`); when that secret is a mapping in its SOPS
  file (whose keys SOPS leaves in plaintext), it must have the fields the
  strategy reads, and an `hmac` key must not be a mapping (`E-AUTH-SECRET`).

What is inside a secret only the runtime sees (see
`E-CREDENTIAL-SECRET-INVALID` in docs/runtime-errors.md).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any, Final

import jinja2

from aivault_ops.diagnostics import Report
from aivault_ops.manifests.model import LocationOf, ManifestSource
from aivault_ops.resolve.templates import HMAC_REQUEST_VARIABLES, variables

HMAC_ALGORITHMS: Final = ("sha256", "sha512")
SECRET_PLACEHOLDER: Final = "secret"  # noqa: S105 (a placeholder name)
REQUIRED_FIELDS: Final = {
    "aws_sig_v4": ("access_key_id", "secret_access_key"),
    "mtls": ("certificate", "private_key"),
}
READS_SECRET: Final = {
    "aws_sig_v4": "a JSON object with access_key_id and secret_access_key",
    "hmac": "the signing key",
    "mtls": "a JSON object with the PEM strings certificate and private_key",
}


def strategy_name(auth: Any) -> str:
    """`hmac` from `{"hmac": {...}}`, `mtls` from `"mtls"`; "" for anything else."""
    if isinstance(auth, str):
        return auth
    if isinstance(auth, Mapping) and len(auth) == 1:
        return str(next(iter(auth)))
    return ""


def check_auth_config(
    auth: Any, source: ManifestSource, path: tuple[str | int, ...], report: Report
) -> bool:
    """Report an `hmac` config the runtime would refuse; True when there is none."""
    if strategy_name(auth) != "hmac" or not isinstance(auth["hmac"], Mapping):
        return True
    config, at = auth["hmac"], (*path, "hmac")
    ok = True
    algorithm = config.get("algorithm")
    if algorithm not in HMAC_ALGORITHMS:
        report.add(
            source.at(*at, "algorithm"),
            "E-AUTH-ALGORITHM",
            f"hmac algorithm {algorithm!r} is not supported; use sha256 or sha512 (lower case)",
        )
        ok = False
    template = config.get("value_template")
    if isinstance(template, str):
        ok = _check_hmac_template(template, source.place(*at, "value_template"), report) and ok
    return ok


def _check_hmac_template(template: str, location: LocationOf, report: Report) -> bool:
    try:
        used = variables(template)
    except jinja2.TemplateSyntaxError:
        return False  # reported by check_auth_templates
    unknown = sorted(used - HMAC_REQUEST_VARIABLES)
    if unknown:
        message = (
            "the hmac value_template may use only signature, signature_b64 and timestamp,"
            f" not {', '.join(unknown)} (the key itself is never a template variable)"
        )
    elif not used & {"signature", "signature_b64"}:
        message = "the hmac value_template must use {{signature}} or {{signature_b64}}"
    else:
        return True
    report.add(location(), "E-AUTH-TEMPLATE", message)
    return False


def check_secret_bound(
    auth: Any, bound: Collection[str], location: LocationOf, report: Report
) -> bool:
    """Report an aws_sig_v4, hmac or mtls credential without a `secret` placeholder."""
    strategy = strategy_name(auth)
    if strategy not in READS_SECRET or SECRET_PLACEHOLDER in bound:
        return True
    report.add(
        location(),
        "E-AUTH-SECRET",
        f"auth {strategy} reads the secret bound to the placeholder 'secret'"
        f" ({READS_SECRET[strategy]}), which this credential does not bind"
        f" (bound: {', '.join(sorted(bound)) or 'none'}); use spec.secretRef,"
        " or spec.secretRefs with the key secret",
    )
    return False


def check_secret_fields(
    auth: Any, name: str, fields: tuple[str, ...] | None, location: LocationOf, report: Report
) -> bool:
    """Report a `secret` that is a mapping without the fields its strategy reads.

    `fields` are the keys of the secret `name` when its SOPS value is a
    mapping, None when it is text (JSON text is encrypted whole: only the
    runtime sees inside it).
    """
    strategy = strategy_name(auth)
    if fields is None or strategy not in READS_SECRET:
        return True
    required = REQUIRED_FIELDS.get(strategy, ())
    missing = [key for key in required if key not in fields]
    if strategy in REQUIRED_FIELDS and not missing:
        return True
    has = ", ".join(fields) or "none"
    message = (
        f"auth {strategy} reads {READS_SECRET[strategy]}, but secret {name} has no"
        f" {', '.join(missing)} (its fields: {has})"
        if missing
        else f"auth hmac reads secret {name} as the key itself, text; it is a mapping"
        f" (fields: {has})"
    )
    report.add(location(), "E-AUTH-SECRET", message)
    return False
