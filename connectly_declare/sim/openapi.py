"""The OpenAPI 3.1 document of the simulated endpoint, served at `/openapi.json` and
checked in as `schema/sim-openapi.json`; a test keeps the two equal. Regenerate with
`python -c 'import connectly_declare.sim.openapi as o; o.main()' > schema/sim-openapi.json`."""

from __future__ import annotations

import json
import sys
from typing import Any

from connectly_declare.sim.engine import MAX_ENTRIES, OPTION_VALUES


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema_name: str, description: str, **extra: Any) -> dict[str, Any]:
    return {"description": description,
            "content": {"application/json": {"schema": _ref(schema_name)}}, **extra}


_NULLABLE_STRING = {"type": ["string", "null"]}

SCHEMAS: dict[str, Any] = {
    "Entry": {
        "type": "object",
        "description": "One recipient of one campaign. Unknown fields are ignored.",
        "required": ["client", "campaignName"],
        "properties": {
            "client": {"type": "string", "description": "the recipient's phone number, E.164 "
                       "(an entry with another form is rejected as invalid)"},
            "campaignName": {"type": "string", "description": "the campaign's exact name"},
            "campaignVersion": {**_NULLABLE_STRING, "description": "a version label or id"},
            "variables": {"type": ["object", "null"], "additionalProperties": {"type": "string"},
                          "description": "all of the campaign's flow variables"},
            "scheduledAt": {**_NULLABLE_STRING, "description": "[alpha] ISO 8601 date and time "
                            "with an offset (an entry with another form is rejected as invalid)"},
        },
    },
    "Options": {
        "type": ["object", "null"],
        "description": "Unknown option names are ignored; unknown values are refused (400).",
        "properties": {
            name: {"type": ["string", "null"], "enum": [*values, None]}
            for name, values in OPTION_VALUES.items()
        },
    },
    "SendRequest": {
        "type": "object",
        "description": "A body without `entries` is answered with `{\"data\": []}`.",
        "properties": {
            "entries": {"type": ["array", "null"], "maxItems": MAX_ENTRIES,
                        "items": _ref("Entry")},
            "options": _ref("Options"),
        },
    },
    "ErrorDetail": {
        "type": "object",
        "required": ["message", "type", "code", "userTitle", "userMessage"],
        "properties": {k: {"type": "string"}
                       for k in ("message", "type", "code", "userTitle", "userMessage")},
    },
    "Result": {
        "type": "object",
        "description": "The outcome of one group of entries (same campaignName and "
                       "campaignVersion), in order of first appearance.",
        "required": ["campaignId", "campaignName", "campaignVersion", "sendoutId", "status",
                     "acceptedCount", "rejectedCount", "error"],
        "properties": {
            "campaignId": _NULLABLE_STRING,
            "campaignName": {"type": "string"},
            "campaignVersion": _NULLABLE_STRING,
            "sendoutId": _NULLABLE_STRING,
            "status": {"type": "string", "enum": ["created", "updated", "error"]},
            "acceptedCount": {"type": "integer", "minimum": 0},
            "rejectedCount": {"type": "integer", "minimum": 0},
            "error": {"oneOf": [{"type": "null"}, _ref("ErrorDetail")]},
        },
    },
    "SendResponse": {
        "type": "object",
        "required": ["data"],
        "properties": {"data": {"type": "array", "items": _ref("Result")}},
    },
    "RequestError": {
        "type": "object",
        "description": "The simulator's body for a request-level error (the vendor's page "
                       "shows none).",
        "required": ["error"],
        "properties": {"error": _ref("ErrorDetail")},
    },
}


def openapi_document() -> dict[str, Any]:
    """The OpenAPI document of `POST /v1/businesses/{businessId}/send/campaigns`."""
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Connectly campaign sendout API (connectly-declare simulator)",
            "version": "1",
            "description": "The vendor endpoint as the simulator implements it. The "
                           "simulator also serves GET /_sim/deliveries, /_sim/counts, "
                           "/_sim/stats, /_sim/catalog and POST /_sim/reset, which are not "
                           "part of the vendor's API.",
        },
        "paths": {
            "/v1/businesses/{businessId}/send/campaigns": {
                "post": {
                    "operationId": "sendCampaigns",
                    "summary": "Send campaigns to multiple recipients.",
                    "security": [{"ApiKey": []}],
                    "parameters": [{"name": "businessId", "in": "path", "required": True,
                                    "schema": {"type": "string"}}],
                    "requestBody": {"required": True, "content": {
                        "application/json": {"schema": _ref("SendRequest")}}},
                    "responses": {
                        "200": _json("SendResponse", "One result per group."),
                        "400": _json("RequestError", "The request is malformed."),
                        "401": _json("RequestError", "Missing or wrong X-API-Key."),
                        "404": _json("SendResponse", "Every group named a missing campaign "
                                     "or version."),
                        "409": _json("SendResponse", "Every group named a draft campaign."),
                        "429": _json("RequestError", "Past the rate limit of the API key.",
                                     headers={"Retry-After": {
                                         "description": "seconds, may be fractional",
                                         "required": True,
                                         "schema": {"type": "string",
                                                    "pattern": r"^\d+(\.\d+)?$"}}}),
                        "500": _json("RequestError", "Internal error (injected)."),
                    },
                },
            },
        },
        "components": {
            "schemas": SCHEMAS,
            "securitySchemes": {"ApiKey": {"type": "apiKey", "in": "header",
                                           "name": "X-API-Key"}},
        },
    }


def main() -> None:
    json.dump(openapi_document(), sys.stdout, indent=2, ensure_ascii=False)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
