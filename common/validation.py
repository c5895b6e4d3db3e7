"""Request parsing shared by the services: JSON bodies, bracket query strings, pydantic models,
and their failures in Nango's error shape."""

from __future__ import annotations

import json
import re
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError
from werkzeug.datastructures import MultiDict

from common.errors import ApiError

M = TypeVar("M", bound=BaseModel)
BRACKET = re.compile(r"^([^\[\]]+)\[([^\[\]]*)\]$")
TRUE_WORDS = {"true", "1", "yes", "on"}
FALSE_WORDS = {"false", "0", "no", "off"}


class Strict(BaseModel):
    """Base of every request schema: unknown fields are refused."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    return {dict: "object", list: "array", str: "string", bool: "boolean", int: "number",
            float: "number"}.get(type(value), type(value).__name__)


def _issue(err: dict) -> dict[str, Any]:
    kind, loc = err["type"], [p for p in err["loc"] if not isinstance(p, str) or not p.startswith("function-")]
    if kind == "missing":
        expected = err.get("ctx", {}).get("expected", "value")
        return {"code": "invalid_type", "message": f"Invalid input: expected {expected}, received undefined",
                "path": loc}
    if kind == "extra_forbidden":
        return {"code": "unrecognized_keys", "message": f'Unrecognized key: "{loc[-1]}"', "path": loc[:-1]}
    if kind.endswith("_type") or kind in ("model_attributes_type", "dict_type", "list_type"):
        return {"code": "invalid_type",
                "message": f"Invalid input: {err['msg']}, received {_type_name(err.get('input'))}", "path": loc}
    if kind in ("string_too_long", "too_long"):
        return {"code": "too_big", "message": err["msg"], "path": loc}
    if kind in ("string_too_short", "too_short"):
        return {"code": "too_small", "message": err["msg"], "path": loc}
    message = err["msg"].removeprefix("Value error, ")
    return {"code": "invalid_string" if kind == "value_error" else "custom", "message": message, "path": loc}


def validate(model: type[M], data: Any, code: str = "invalid_body") -> M:
    """Validate `data` against `model` or raise 400 `code` with the list of issues."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ApiError(code=code, status=400, errors=[_issue(e) for e in exc.errors()], message=None) from None


def json_body(request, *, required: bool = True) -> Any:
    """The request's JSON body; 415 for another content type, 400 `invalid_json` when unparsable."""
    raw = request.get_data(cache=True)
    if not raw:
        if required:
            raise ApiError(code="invalid_body", status=400, message=None, errors=[
                {"code": "invalid_type", "message": "Invalid input: expected object, received undefined",
                 "path": []}])
        return None
    mimetype = request.mimetype or ""
    if mimetype and mimetype != "application/json" and not mimetype.endswith("+json"):
        raise ApiError(f"Content-Type must be application/json, got {mimetype}", code="invalid_content_type",
                       status=415)
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise ApiError("Invalid JSON in the request body", code="invalid_json", status=400) from None


def parse_query(args: MultiDict) -> dict[str, Any]:
    """Query string to a dict, with `a[b]=c` as nested dicts and repeated keys as lists."""
    out: dict[str, Any] = {}
    for key in args:
        values = args.getlist(key)
        value: Any = values[0] if len(values) == 1 else values
        match = BRACKET.match(key)
        if match:
            outer, inner = match.groups()
            target = out.setdefault(outer, {})
            if not isinstance(target, dict):
                raise ApiError(code="invalid_query_params", status=400, message=None, errors=[
                    {"code": "invalid_type", "message": "Invalid input: mixed plain and bracket keys",
                     "path": [outer]}])
            target[inner] = value
        else:
            out[key] = value
    return out


def query(model: type[M], args: MultiDict) -> M:
    return validate(model, parse_query(args), code="invalid_query_params")


def stringbool(value: Any) -> Any:
    """Coerce 'true'/'false'/1/0/yes/no/on/off query strings; leave anything else for the schema."""
    if isinstance(value, str):
        word = value.strip().lower()
        if word in TRUE_WORDS:
            return True
        if word in FALSE_WORDS:
            return False
    return value
