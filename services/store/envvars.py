"""Environment variables: named values an environment keeps for its scripts, encrypted."""

from __future__ import annotations

import re
import uuid

from services.store import operations
from services.store.context import StoreContext
from services.store.models import EnvironmentVariable, utcnow

NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,255}$")


def list_plain(ctx: StoreContext, env_id: int) -> list[dict]:
    rows = EnvironmentVariable.select().where(EnvironmentVariable.environment == env_id).order_by(
        EnvironmentVariable.name)
    return [{"name": r.name, "value": r.unseal(ctx.cipher, "value_enc")} for r in rows]


def names(env_id: int) -> list[str]:
    """Variable names only (the admin CLI never prints values)."""
    rows = EnvironmentVariable.select(EnvironmentVariable.name).where(EnvironmentVariable.environment == env_id)
    return [row.name for row in rows.order_by(EnvironmentVariable.name)]


def set_value(ctx: StoreContext, env_id: int, name: str, value: str, *, actor: str = "admin") -> None:
    """Create or replace a variable; its value is encrypted bound to the row (recorded by name only)."""
    if not NAME.match(name):
        raise ValueError("a variable name is letters, digits and underscores, not starting with a digit")
    row = EnvironmentVariable.get_or_none((EnvironmentVariable.environment == env_id)
                                          & (EnvironmentVariable.name == name))
    if row is None:
        row = EnvironmentVariable(uid=str(uuid.uuid4()), environment=env_id, name=name)
    row.seal(ctx.cipher, "value_enc", value)
    row.updated_at = utcnow()
    row.save(force_insert=row.id is None)
    operations.record(env_id, "env_var.set", actor=actor, detail={"name": name})


def delete(env_id: int, name: str, *, actor: str = "admin") -> bool:
    gone = bool(EnvironmentVariable.delete().where((EnvironmentVariable.environment == env_id)
                                                   & (EnvironmentVariable.name == name)).execute())
    if gone:
        operations.record(env_id, "env_var.deleted", actor=actor, detail={"name": name})
    return gone
