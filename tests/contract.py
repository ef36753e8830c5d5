"""Validate HTTP answers against truedy-api.yaml (OpenAPI 3.1 schemas are JSON Schema 2020-12)."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import yaml

SPEC_PATH = Path(__file__).resolve().parent.parent / "reconcile" / "sandbox" / "truedy-api.yaml"


@cache
def spec() -> dict[str, Any]:
    return yaml.safe_load(SPEC_PATH.read_text())


def _operation(path: str, method: str) -> dict[str, Any]:
    for template, item in spec()["paths"].items():
        pattern = "^" + re.sub(r"\{[^}]+\}", "[^/]+", template) + "$"
        if re.match(pattern, path) and method.lower() in item:
            return item[method.lower()]
    raise AssertionError(f"{method} {path} is not in the contract")


def assert_conforms(response: httpx.Response) -> None:
    """The answer's status is declared for its operation and its JSON body fits the schema."""
    path = "/" + response.request.url.path.lstrip("/")
    operation = _operation(path, response.request.method)
    status = str(response.status_code)
    declared = operation["responses"].get(status)
    assert declared is not None, f"{response.request.method} {path} answered undeclared {status}"
    if "$ref" in declared:
        declared = spec()["components"]["responses"][declared["$ref"].rsplit("/", 1)[-1]]
    schema = dict(declared["content"]["application/json"]["schema"])
    schema["components"] = spec()["components"]
    validator = jsonschema.Draft202012Validator(schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)
    errors = sorted(validator.iter_errors(response.json()), key=lambda e: list(e.path))
    assert not errors, f"{response.request.method} {path}: {errors[0].message} at {list(errors[0].path)}"
    for header in ("x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset"):
        assert header in response.headers, f"{header} missing"
    if response.status_code == 429:
        assert response.headers["retry-after"].isdigit()
