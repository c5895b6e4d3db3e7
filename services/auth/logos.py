"""The logo of a provider, as the SVG behind `/images/template-logos/<provider>.svg`.

A brand icon comes from simple-icons (CC0 icons, bundled by the `simpleicons` Python package, MIT,
pinned in pyproject.toml: the icons ship inside the wheel, so nothing is fetched at run time). It
is found by the provider's name without dashes, its display name as simple-icons spells a slug,
or the name's first segment (`google-mail` → `gmail` by its display name, `jira-basic` → `jira`).
A provider with no icon gets a monogram: its initials on a tile whose colour follows from its
name, so it stays the same across restarts and replicas.
"""

from __future__ import annotations

import functools
import hashlib
import re
from dataclasses import dataclass
from html import escape

ICON_SOURCE = "simple-icons (CC0-1.0) via the simpleicons package"
_NOT_SLUG = re.compile(r"[^a-z0-9]")
# How simple-icons turns a title into a slug, for the characters provider display names use.
_SLUG_WORDS = (("+", "plus"), (".", "dot"), ("&", "and"))


@dataclass(frozen=True)
class Logo:
    svg: bytes
    etag: str
    brand: bool  # a brand icon (True) or a generated monogram


@functools.cache
def _icons() -> dict:
    # Imported on the first logo asked for: the module holds every icon (a few MB) and takes ~0.5 s.
    from simpleicons.all import icons

    return icons


def _slug(text: str) -> str:
    text = text.lower()
    for char, word in _SLUG_WORDS:
        text = text.replace(char, word)
    return _NOT_SLUG.sub("", text)


def candidate_slugs(name: str, display_name: str | None) -> list[str]:
    """The simple-icons slugs that may stand for provider `name`, best first."""
    slugs = [_slug(name)]
    if display_name:
        slugs.append(_slug(display_name))
        slugs.append(_slug(display_name.split("(")[0]))
    slugs.append(_slug(name.split("-")[0]))
    return [slug for slug in dict.fromkeys(slugs) if slug]


def brand_svg(name: str, display_name: str | None) -> str | None:
    """The brand icon of the provider in its brand colour, or None when simple-icons has none."""
    icons = _icons()
    for slug in candidate_slugs(name, display_name):
        icon = icons.get(slug) if slug in icons else None
        if icon is not None:
            title = escape(display_name or icon.title)
            return (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24" role="img">'
                    f'<title>{title}</title><path fill="#{icon.hex}" d="{escape(icon.path)}"/></svg>')
    return None


def initials(name: str, display_name: str | None) -> str:
    """One or two letters for a monogram: the first letters of the first two words."""
    words = re.findall(r"[A-Za-z0-9]+", display_name or name) or ["?"]
    if len(words) == 1:
        return words[0][:2].capitalize() if len(words[0]) > 1 and not words[0].isupper() else words[0][:2].upper()
    return (words[0][0] + words[1][0]).upper()


def monogram_svg(name: str, display_name: str | None) -> str:
    """A tile with the provider's initials; its hue is derived from the name."""
    hue = int.from_bytes(hashlib.sha256(name.encode()).digest()[:2], "big") % 360
    label = escape(initials(name, display_name))
    title = escape(display_name or name)
    # Lightness 29 % keeps white text at WCAG's 4.5:1 contrast or more for every hue (yellow is the worst).
    return (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 64 64" role="img"><title>{title}</title>'
            f'<rect width="64" height="64" rx="14" fill="hsl({hue},60%,29%)"/>'
            f'<text x="32" y="33" fill="#fff" font-family="system-ui,-apple-system,Segoe UI,sans-serif" '
            f'font-size="26" font-weight="600" text-anchor="middle" dominant-baseline="middle">{label}</text></svg>')


def logo(name: str, display_name: str | None) -> Logo:
    """The logo of provider `name`: its brand icon where one exists, else a monogram."""
    svg = brand_svg(name, display_name)
    brand = svg is not None
    data = (svg or monogram_svg(name, display_name)).encode()
    return Logo(svg=data, etag='"' + hashlib.sha256(data).hexdigest()[:32] + '"', brand=brand)
