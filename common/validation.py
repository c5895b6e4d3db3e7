"""Request parsing shared by the services: JSON bodies, bracket query strings, pydantic models,
and their failures in Nango's error shape (zod's issue codes, messages and paths)."""

from __future__ import annotations

import json
import math
import re
import types
from typing import Annotated, Any, Literal, TypeVar, Union, get_args, get_origin

from pydantic import BaseModel, ConfigDict, ValidationError
from werkzeug.datastructures import MultiDict

from common.errors import ApiError

M = TypeVar("M", bound=BaseModel)
BRACKET = re.compile(r"^([^\[\]]+)\[([^\[\]]*)\]$")
TRUE_WORDS = {"true", "1", "yes", "on"}
FALSE_WORDS = {"false", "0", "no", "off"}
# Deeper JSON than this is refused up front rather than failing somewhere downstream.
MAX_DEPTH = 128
EXPECTED = {
    "string_type": "string", "int_type": "number", "int_parsing": "number", "int_from_float": "number",
    "float_type": "number", "float_parsing": "number", "bool_type": "boolean", "bool_parsing": "boolean",
    "dict_type": "object", "model_type": "object", "model_attributes_type": "object", "list_type": "array",
}
BOUNDS = {  # pydantic type: (zod code, comparison, what, ctx key)
    "string_too_long": ("too_big", "<=", "string to have", "max_length", " characters"),
    "string_too_short": ("too_small", ">=", "string to have", "min_length", " characters"),
    "too_long": ("too_big", "<=", "array to have", "max_length", " items"),
    "too_short": ("too_small", ">=", "array to have", "min_length", " items"),
    "less_than_equal": ("too_big", "<=", "number to be", "le", ""),
    "greater_than_equal": ("too_small", ">=", "number to be", "ge", ""),
}


class Strict(BaseModel):
    """Base of every request body schema: unknown fields are refused and nothing is coerced
    ("5" is not a number, "yes" not a boolean), as Nango's zod schemas behave."""

    model_config = ConfigDict(extra="forbid", strict=True)


class StrictQuery(BaseModel):
    """Base of query-string schemas: unknown keys are refused; numbers arrive as text and are parsed."""

    model_config = ConfigDict(extra="forbid")


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    return {dict: "object", list: "array", str: "string", bool: "boolean", int: "number",
            float: "number"}.get(type(value), type(value).__name__)


def _input_path(loc: tuple, data: Any, keep_last: bool) -> list:
    """The error's location in the caller's input: pydantic also names union members
    ("OAUTH2", "str", "list[...]") in `loc`; those are not keys of the input and are dropped."""
    path, current = [], data
    for index, seg in enumerate(loc):
        if isinstance(current, dict) and isinstance(seg, str) and seg in current:
            current = current[seg]
        elif isinstance(current, list) and isinstance(seg, int) and 0 <= seg < len(current):
            current = current[seg]
        elif not (keep_last and index == len(loc) - 1):
            continue
        path.append(seg)
    return path


def _members(annotation: Any) -> list:
    while get_origin(annotation) is Annotated:
        annotation = get_args(annotation)[0]
    if get_origin(annotation) in (Union, types.UnionType):
        return [m for member in get_args(annotation) for m in _members(member) if m is not type(None)]
    return [annotation]


def _kind(annotation: Any) -> str:
    member = _members(annotation)[0]
    origin = get_origin(member)
    if member is dict or origin is dict or (isinstance(member, type) and issubclass(member, BaseModel)):
        return "object"
    if member is list or origin is list:
        return "array"
    if origin is Literal:
        return _type_name(get_args(member)[0])
    return {str: "string", bool: "boolean", int: "number", float: "number"}.get(member, "value")


def _expected(model: type[BaseModel], path: list) -> str:
    """What the schema wants at `path` (for "expected X, received undefined")."""
    annotation: Any = model
    for seg in path:
        for member in _members(annotation):
            if isinstance(member, type) and issubclass(member, BaseModel) and seg in member.model_fields:
                annotation = member.model_fields[seg].annotation
                break
            if get_origin(member) in (dict, list):
                annotation = get_args(member)[-1]
                break
        else:
            return "value"
    return _kind(annotation)


def _issue(err: dict, model: type[BaseModel], data: Any) -> dict[str, Any]:
    kind, ctx = err["type"], err.get("ctx") or {}
    path = _input_path(err["loc"], data, keep_last=kind == "missing")
    if kind == "missing":
        return {"code": "invalid_type", "path": path,
                "message": f"Invalid input: expected {_expected(model, path)}, received undefined"}
    if kind == "extra_forbidden":
        return {"code": "unrecognized_keys", "keys": [path[-1]], "path": path[:-1]}
    if kind in EXPECTED:
        return {"code": "invalid_type", "path": path,
                "message": f"Invalid input: expected {EXPECTED[kind]}, received {_type_name(err.get('input'))}"}
    if kind in BOUNDS:
        code, sign, what, key, unit = BOUNDS[kind]
        return {"code": code, "path": path, "message": f"Too {code[4:]}: expected {what} {sign}{ctx.get(key)}{unit}"}
    if kind == "string_pattern_mismatch":
        return {"code": "invalid_format", "format": "regex", "path": path,
                "message": f"Invalid string: must match pattern /{ctx.get('pattern')}/"}
    if kind == "literal_error":
        options = "|".join(re.findall(r"'([^']*)'", str(ctx.get("expected", ""))))
        return {"code": "invalid_value", "path": path, "message": f"Invalid option: expected one of {options}"}
    if kind in ("union_tag_invalid", "union_tag_not_found"):
        name = str(ctx.get("discriminator", "type")).strip("'")
        if kind == "union_tag_not_found":
            return {"code": "invalid_type", "path": [*path, name],
                    "message": "Invalid input: expected string, received undefined"}
        tags = "|".join(re.findall(r"'([^']*)'", str(ctx.get("expected_tags", ""))))
        return {"code": "invalid_union", "path": [*path, name], "message": f"Invalid input: expected one of {tags}"}
    return {"code": "custom", "path": path, "message": err["msg"].removeprefix("Value error, ")}


def issues(model: type[BaseModel], data: Any, exc: ValidationError) -> list[dict[str, Any]]:
    """Pydantic's errors as zod-style issues; several failures at one path (the members of a
    union) become one `invalid_union`, unknown keys at one path one `unrecognized_keys`."""
    by_path: dict[tuple, dict[str, Any]] = {}
    for err in exc.errors():
        issue = _issue(err, model, data)
        key = (tuple(issue["path"]), issue["code"] == "unrecognized_keys")
        seen = by_path.get(key)
        if seen is None:
            by_path[key] = issue
        elif issue["code"] == "unrecognized_keys":
            seen["keys"] += issue["keys"]
        else:
            by_path[key] = {"code": "invalid_union", "message": "Invalid input", "path": issue["path"]}
    for issue in by_path.values():
        if issue["code"] == "unrecognized_keys":
            names = ", ".join(f'"{k}"' for k in issue["keys"])
            issue["message"] = f"Unrecognized key{'s' if len(issue['keys']) > 1 else ''}: {names}"
    return list(by_path.values())


def validate(model: type[M], data: Any, code: str = "invalid_body") -> M:
    """Validate `data` against `model` or raise 400 `code` with the list of issues."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ApiError(code=code, status=400, errors=issues(model, data, exc), message=None) from None


def _storable(text: str) -> bool:
    """No NUL and no unpaired surrogate: Postgres text cannot hold either."""
    if "\x00" in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not JSON")


def loads_finite(text: str | bytes) -> Any:
    """JSON from another party (a provider's answer), with `NaN`, `Infinity` and numbers too large
    for a double read as null: nothing that cannot be served back as JSON gets in."""
    return json.loads(text, parse_constant=lambda _name: None, parse_float=_finite_or_none)


def _finite_or_none(text: str) -> float | None:
    value = float(text)
    return value if math.isfinite(value) else None


def _non_finite_error(path: list, code: str) -> ApiError:
    return ApiError(code=code, status=400, message=None, errors=[{
        "code": "invalid_type", "path": path,
        "message": "Invalid input: expected a finite number (this one is too large to store)"}])


def check_json_value(value: Any, code: str = "invalid_body") -> None:
    """Refuse JSON nested deeper than MAX_DEPTH, strings a database cannot store, and numbers
    that are not finite (no JSON parser reads back the `Infinity` they would be served as)."""
    stack: list[tuple[Any, tuple, int]] = [(value, (), 1)]
    while stack:
        item, path, depth = stack.pop()
        if isinstance(item, float) and not math.isfinite(item):
            raise _non_finite_error(list(path), code)
        if isinstance(item, str):
            if not _storable(item):
                raise ApiError(code=code, status=400, message=None, errors=[{
                    "code": "invalid_format", "path": list(path),
                    "message": "Invalid string: must not contain NUL characters or unpaired surrogates"}])
        elif isinstance(item, (dict, list)):
            if depth > MAX_DEPTH:
                raise ApiError(f"The JSON body is nested deeper than {MAX_DEPTH} levels", code="invalid_json",
                               status=400)
            pairs = item.items() if isinstance(item, dict) else enumerate(item)
            for key, child in pairs:
                if isinstance(key, str) and not _storable(key):
                    stack.append((key, (*path, key), depth))
                stack.append((child, (*path, key), depth + 1))


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
        data = json.loads(raw, parse_constant=_refuse_constant)  # `1e999` parses as inf: refused below
    except (ValueError, UnicodeDecodeError):
        raise ApiError("Invalid JSON in the request body", code="invalid_json", status=400) from None
    except RecursionError:
        raise ApiError(f"The JSON body is nested deeper than {MAX_DEPTH} levels", code="invalid_json",
                       status=400) from None
    check_json_value(data)
    return data


def _query_error(path: list, message: str) -> ApiError:
    return ApiError(code="invalid_query_params", status=400, message=None, errors=[
        {"code": "invalid_type", "message": message, "path": path}])


def parse_query(args: MultiDict) -> dict[str, Any]:
    """Query string to a dict, with `a[b]=c` as nested dicts and repeated keys as lists."""
    out: dict[str, Any] = {}
    for key in args:
        values = args.getlist(key)
        if not _storable(key) or not all(_storable(v) for v in values):
            raise _query_error([key], "Invalid input: must not contain NUL characters")
        value: Any = values[0] if len(values) == 1 else values
        match = BRACKET.match(key)
        if match:
            outer, inner = match.groups()
            target = out.setdefault(outer, {})
            if not isinstance(target, dict):
                raise _query_error([outer], "Invalid input: mixed plain and bracket keys")
            target[inner] = value
        else:
            if isinstance(out.get(key), dict):
                raise _query_error([key], "Invalid input: mixed plain and bracket keys")
            out[key] = value
    return out


def query(model: type[M], args: MultiDict) -> M:
    return validate(model, parse_query(args), code="invalid_query_params")


def uri_param(name: str, value: str, pattern: re.Pattern, max_length: int = 255) -> str:
    """A value taken from the URL path, checked like Nango checks its route parameters."""
    if len(value) > max_length or not pattern.fullmatch(value):
        raise ApiError(code="invalid_uri_params", status=400, message=None, errors=[{
            "code": "invalid_format", "path": [name],
            "message": f"Invalid string: must match pattern /{pattern.pattern}/ and have <={max_length} characters"}])
    return value


def stringbool(value: Any) -> Any:
    """Coerce 'true'/'false'/1/0/yes/no/on/off query strings; leave anything else for the schema."""
    if isinstance(value, str):
        word = value.strip().lower()
        if word in TRUE_WORDS:
            return True
        if word in FALSE_WORDS:
            return False
    return value
