"""Temporary AWS keys for an AWS_SIGV4 connection: the end user's role (`role_arn`, which their
account lets the integration's AWS principal assume) is assumed through STS `AssumeRole`
(`POST {token_url}`, default `https://sts.amazonaws.com/`, form-encoded, signed with Signature
V4 for service `sts` in us-east-1 with the integration's own AWS keys: its client id is the access
key id and its client secret — stored encrypted, like every secret — the secret access key), through
the egress layer. The answer's keys and session token are
stored with the role, and the role is assumed again before `Expiration`."""

from __future__ import annotations

import re
import uuid
from urllib.parse import urlencode
from xml.etree import ElementTree

from common.aws_sigv4 import NAME, SigV4Signer
from common.errors import ApiError, field_error
from services.auth.provider_calls import Outbound

STS_URL = "https://sts.amazonaws.com/"
ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]{1,512}$")
SESSION_SECONDS = 3600


def invalid(name: str, message: str) -> ApiError:
    return ApiError(message, code="invalid_body", status=400, errors=[field_error([name], message)])


def captured_fields(body) -> dict:
    """{role_arn, region?} of a capture body; a 400 naming the field otherwise."""
    if not isinstance(body, dict):
        raise invalid("", "The body must be a JSON object")
    unknown = [k for k in body if k not in ("type", "role_arn", "region")]
    if unknown:
        raise invalid(unknown[0], f"{unknown[0]} is not a field of AWS SigV4 credentials")
    if not isinstance(body.get("role_arn"), str) or not ROLE_ARN.match(body["role_arn"]):
        raise invalid("role_arn", "role_arn must be an IAM role ARN (arn:aws:iam::<account>:role/<name>)")
    fields = {"role_arn": body["role_arn"]}
    if body.get("region") not in (None, ""):
        if not isinstance(body["region"], str) or not NAME.match(body["region"]):
            raise invalid("region", "region must be an AWS region name such as us-east-1")
        fields["region"] = body["region"]
    return fields


def _text(root, name: str) -> str | None:
    found = next((e for e in root.iter() if e.tag.rsplit("}", 1)[-1] == name), None)
    return found.text.strip() if found is not None and found.text else None


def assume_role(outbound: Outbound, provider: dict, fields: dict, key_id: str | None, secret: str | None) -> dict:
    """The AWS_SIGV4 credentials to store: the role, its region, and the temporary keys. `key_id` and
    `secret` are the integration's client id and client secret (its own AWS access key)."""
    if not key_id or not secret:
        raise ApiError("The integration has no client id and client secret (its AWS access key id and secret "
                       "access key) to call STS with", code="missing_client_credentials", status=400)
    url = str(provider.get("token_url") or STS_URL)
    body = urlencode({"Action": "AssumeRole", "Version": "2011-06-15", "RoleArn": fields["role_arn"],
                      "RoleSessionName": "authport-" + uuid.uuid4().hex[:12],
                      "DurationSeconds": str(SESSION_SECONDS)}).encode()
    headers = {"content-type": "application/x-www-form-urlencoded; charset=utf-8"}
    headers.update(SigV4Signer(str(key_id), str(secret), "us-east-1", "sts")("POST", url, headers, body))
    try:
        answer = outbound.send("POST", url, headers=headers, body=body)
    except ApiError as exc:
        raise ApiError(f"AWS STS could not be reached ({exc.code})", code="invalid_credentials", status=400) from None
    if not answer.ok:
        raise ApiError(f"AWS STS refused to assume the role (status {answer.status})", code="invalid_credentials",
                       status=400)
    try:
        root = ElementTree.fromstring(answer.body)
    except ElementTree.ParseError:
        raise ApiError("AWS STS answered something that is not XML", code="invalid_credentials", status=400) from None
    found = {name: _text(root, name) for name in ("AccessKeyId", "SecretAccessKey", "SessionToken", "Expiration")}
    if not all(found.values()):
        raise ApiError("AWS STS's answer has no temporary credentials", code="invalid_credentials", status=400)
    return {"type": "AWS_SIGV4", **fields, "access_key_id": found["AccessKeyId"],
            "secret_access_key": found["SecretAccessKey"], "session_token": found["SessionToken"],
            "expires_at": found["Expiration"]}
