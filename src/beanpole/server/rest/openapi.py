"""The OpenAPI document as the API really answers.

FastAPI documents a 422 "Validation Error" on every route with inputs, while Beanpole
answers a malformed request with 400 and its one error shape (`errors`). This replaces
those entries by the 400 the route answers, so a client generated from the document (and
the schemathesis run in the suite) sees only statuses and shapes that happen.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from beanpole.server.rest.errors import DESCRIPTION

_FASTAPI_VALIDATION = ("HTTPValidationError", "ValidationError")


def finish_openapi(app: FastAPI) -> None:
    generate = app.openapi  # FastAPI's, which caches its document in app.openapi_schema

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            _answer_400_not_422(generate())
        return generate()

    app.openapi = openapi  # type: ignore[method-assign]


def _answer_400_not_422(document: dict[str, Any]) -> None:
    schemas = document.get("components", {}).get("schemas", {})
    error_ref = {"$ref": "#/components/schemas/ErrorBody"}
    for path in document.get("paths", {}).values():
        for operation in path.values():
            answers = operation.get("responses", {})
            validation = answers.get("422", {})
            ref = (
                validation.get("content", {})
                .get("application/json", {})
                .get("schema", {})
                .get("$ref", "")
            )
            if ref.endswith("/HTTPValidationError"):
                del answers["422"]
                answers.setdefault(
                    "400",
                    {
                        "description": DESCRIPTION[400],
                        "content": {"application/json": {"schema": error_ref}},
                    },
                )
            if "requestBody" in operation:  # `limits.BodyLimit`, or an upload's own limit
                answers.setdefault(
                    "413",
                    {
                        "description": DESCRIPTION[413],
                        "content": {"application/json": {"schema": error_ref}},
                    },
                )
    for name in _FASTAPI_VALIDATION:
        schemas.pop(name, None)
