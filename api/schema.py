"""The schema's error answers: every operation may answer RFC 9457 problems."""

from __future__ import annotations

PROBLEM = {
    "type": "object",
    "description": "RFC 9457 problem details.",
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
        "errors": {"type": "object", "additionalProperties": True,
                   "description": "Field errors of the request body."},
        "retry_after": {"type": "integer"},
    },
    "required": ["type", "title", "status", "detail"],
}
_ERRORS = {
    "400": "Invalid request", "401": "No valid token", "403": "Scope or permission missing",
    "404": "Not found", "405": "Method not allowed", "406": "Not acceptable",
    "413": "Request body too large", "415": "Unsupported media type", "422": "Cannot be done",
    "429": "Rate limited",
}


def add_problem_responses(result, generator, request, public):
    result.setdefault("components", {}).setdefault("schemas", {})["Problem"] = PROBLEM
    ref = {"$ref": "#/components/schemas/Problem"}
    for path in result.get("paths", {}).values():
        for operation in path.values():
            responses = operation.setdefault("responses", {})
            for code, text in _ERRORS.items():
                responses.setdefault(code, {"description": text,
                                            "content": {"application/problem+json":
                                                        {"schema": ref}}})
    return result
