"""Shared readers of the synthesized template."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aws_cdk.assertions import Template


def logical_ref(value: Any) -> str:
    """The logical id a ``Ref`` or ``Fn::GetAtt`` points at (else the value as text)."""
    if isinstance(value, dict):
        if "Ref" in value:
            return value["Ref"]
        if "Fn::GetAtt" in value:
            return value["Fn::GetAtt"][0]
    return str(value)


def role_statements(template: Template, role_prefix: str) -> list[dict[str, Any]]:
    """Statements of every policy attached to roles whose logical id starts with the prefix."""
    statements = []
    for policy in template.find_resources("AWS::IAM::Policy").values():
        roles = [r["Ref"] for r in policy["Properties"]["Roles"]]
        if any(r.startswith(role_prefix) for r in roles):
            statements.extend(policy["Properties"]["PolicyDocument"]["Statement"])
    return statements


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def object_patterns(statements: list[dict[str, Any]], action: str) -> set[str]:
    """Key patterns (after the bucket ARN) on which the statements allow ``action``."""
    found = set()
    for st in statements:
        if action not in as_list(st["Action"]):
            continue
        for res in as_list(st["Resource"]):
            if isinstance(res, dict) and "Fn::Join" in res:
                found.add(str(res["Fn::Join"][1][-1]))
            else:
                found.add(str(res))
    return found


def single(found: Mapping[str, Any]) -> tuple[str, Any]:
    assert len(found) == 1, sorted(found)
    return next(iter(found.items()))
