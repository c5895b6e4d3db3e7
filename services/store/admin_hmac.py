"""Admin commands on an environment's HMAC key for public-key auth flows (wired into
`python -m services.store.admin`):

    hmac show --env dev        the key (a secret: your backend computes each flow's `hmac` with it) and its state
    hmac enable --env dev      every public-key flow must carry a valid `hmac`
    hmac disable --env dev     only flows that replace an existing connection need it (the default)
    hmac rotate --env dev      a new key; hmacs computed with the old one stop being accepted
"""

from __future__ import annotations

from services.store import hmac_keys
from services.store.admin_accounts import environment
from services.store.context import StoreContext
from services.store.migrations import write_transaction
from services.store.models import Environment


def _state(env: Environment) -> str:
    return "enabled (required on every public-key flow)" if env.hmac_enabled else \
        "disabled (required only to replace an existing connection)"


def hmac_show(ctx: StoreContext, db, args) -> None:
    env = environment(args.account, args.env)
    with write_transaction(db):
        key = hmac_keys.reveal(ctx.cipher, env)
    print(f"hmac key of {args.account}/{env.name}: {key}")
    print(f"hmac: {_state(env)}")


def _toggle(enabled: bool):
    def run(ctx: StoreContext, db, args) -> None:
        env = environment(args.account, args.env)
        with write_transaction(db):
            hmac_keys.ensure_key(ctx.cipher, env)
            hmac_keys.set_enabled(env, enabled)
        print(f"hmac of {args.account}/{env.name}: {_state(Environment.get_by_id(env.id))}")
    return run


def hmac_rotate(ctx: StoreContext, db, args) -> None:
    env = environment(args.account, args.env)
    with write_transaction(db):
        key = hmac_keys.rotate(ctx.cipher, env)
    print(f"new hmac key of {args.account}/{env.name}: {key}")


def register(groups, command) -> None:
    cmds = groups.add_parser("hmac", help="HMAC key of public-key auth flows").add_subparsers(
        dest="action", required=True)
    command(cmds, "show", hmac_show, "show the environment's HMAC key and whether it is required", env=True)
    command(cmds, "enable", _toggle(True), "require a valid hmac on every public-key auth flow", env=True)
    command(cmds, "disable", _toggle(False), "require hmac only to replace an existing connection", env=True)
    command(cmds, "rotate", hmac_rotate, "replace the environment's HMAC key", env=True)
