"""Every (code, status) an Authport error is built with, read from the source with `ast`."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("common", "gateway", "services", "authport")


def _trees() -> dict[str, ast.Module]:
    return {str(p.relative_to(ROOT)): ast.parse(p.read_text())
            for package in PACKAGES for p in sorted((ROOT / package).rglob("*.py"))}


def _classes(trees) -> dict[str, tuple[str, int]]:
    """ApiError and its subclasses (by name, across files) with their default (code, status)."""
    classes = {"ApiError": ("invalid_request", 400)}
    grew = True
    while grew:
        grew = False
        for tree in trees.values():
            for node in ast.walk(tree):
                if not isinstance(node, ast.ClassDef) or node.name in classes:
                    continue
                bases = [getattr(b, "id", getattr(b, "attr", None)) for b in node.bases]
                base = next((b for b in bases if b in classes), None)
                if base is None:
                    continue
                code, status = classes[base]
                for stmt in node.body:
                    if isinstance(stmt, ast.Assign) and isinstance(stmt.value, ast.Constant):
                        names = {getattr(t, "id", None) for t in stmt.targets}
                        code = stmt.value.value if "code" in names else code
                        status = stmt.value.value if "status" in names else status
                classes[node.name] = (code, status)
                grew = True
    return classes


def raise_sites() -> tuple[dict[str, set[tuple[int, str]]], list[str]]:
    """code → {(status, "file:line")} of every error built with a literal code, and the sites whose
    code is literal but whose status is computed (which a table cannot check)."""
    trees = _trees()
    classes = _classes(trees)
    sites: dict[str, set[tuple[int, str]]] = defaultdict(set)
    computed: list[str] = []
    for path, tree in trees.items():
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            name = getattr(node.func, "id", getattr(node.func, "attr", None))
            if name not in classes:
                continue
            code, status = classes[name]
            keywords = {k.arg: k.value for k in node.keywords}
            where = f"{path}:{node.lineno}"
            if "code" in keywords:
                if not isinstance(keywords["code"], ast.Constant):
                    continue  # a code passed on from elsewhere (a relayed error, a validator's code)
                code = keywords["code"].value
            if "status" in keywords:
                if not isinstance(keywords["status"], ast.Constant):
                    computed.append(where)
                    continue
                status = keywords["status"].value
            sites[code].add((status, where))
    return sites, computed
