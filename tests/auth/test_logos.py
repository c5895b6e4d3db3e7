"""Provider logos: every `logo_url` the API hands out answers an SVG, through the gateway, with no
key; brand icons where simple-icons has one, monograms otherwise; cacheable and revalidated."""

from __future__ import annotations

from xml.etree import ElementTree

import pytest
import requests

from services.auth import logos
from tests.support.system import catalogue_system, make_system

SVG = "{http://www.w3.org/2000/svg}"


@pytest.fixture(scope="module")
def builtin_system(tmp_path_factory):
    """The four processes with the built-in catalogue (logos touch no database: one backend)."""
    tmp_dir = tmp_path_factory.mktemp("logos-builtin")
    running = make_system(tmp_dir, f"sqlite:///{tmp_dir / 'authport.db'}").start()
    yield running
    running.stop()


def anonymous() -> requests.Session:
    http = requests.Session()
    http.trust_env = False
    return http


def parsed(body: bytes) -> ElementTree.Element:
    root = ElementTree.fromstring(body)
    assert root.tag == f"{SVG}svg" and root.get("viewBox")
    return root


def test_every_catalogue_logo_url_answers_an_svg_without_a_key(builtin_system):
    providers = builtin_system.session().get(builtin_system.url + "/providers").json()["data"]
    assert len(providers) > 50
    http, brands = anonymous(), 0
    for provider in providers:
        assert provider["logo_url"] == f"{builtin_system.url}/images/template-logos/{provider['name']}.svg"
        answer = http.get(provider["logo_url"])
        assert answer.status_code == 200, (provider["name"], answer.text)
        assert answer.headers["Content-Type"] == "image/svg+xml"
        root = parsed(answer.content)
        assert root.find(f"{SVG}title").text == provider["display_name"]
        brands += root.find(f"{SVG}path") is not None
    assert brands > len(providers) // 2  # most of the built-in providers have a brand icon


def test_a_brand_icon_is_the_brand_path_in_its_colour(builtin_system):
    answer = anonymous().get(builtin_system.url + "/images/template-logos/github.svg")
    path = parsed(answer.content).find(f"{SVG}path")
    assert path.get("fill") == "#181717" and path.get("d").startswith("M12")


def test_a_provider_without_an_icon_gets_a_monogram(builtin_system):
    answer = anonymous().get(builtin_system.url + "/images/template-logos/bamboohr.svg")
    root = parsed(answer.content)
    assert root.find(f"{SVG}path") is None and root.find(f"{SVG}text").text == "Ba"


def test_logos_are_cacheable_and_revalidate_with_their_etag(builtin_system):
    http, url = anonymous(), builtin_system.url + "/images/template-logos/slack.svg"
    first = http.get(url)
    etag = first.headers["ETag"]
    assert "max-age=604800" in first.headers["Cache-Control"] and "public" in first.headers["Cache-Control"]
    again = http.get(url, headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b"" and again.headers["ETag"] == etag
    assert http.get(url, headers={"If-None-Match": f'W/{etag}, "other"'}).status_code == 304
    assert http.get(url, headers={"If-None-Match": '"stale"'}).status_code == 200
    assert http.head(url).status_code == 200


def test_an_unknown_provider_is_a_json_404(builtin_system):
    answer = anonymous().get(builtin_system.url + "/images/template-logos/no-such-provider.svg")
    assert answer.status_code == 404
    assert answer.json()["error"]["code"] == "not_found"
    assert anonymous().get(builtin_system.url + "/images/template-logos/github.png").status_code == 404


def test_a_thousand_provider_file_has_a_logo_for_each(tmp_path):
    catalogue = {f"acme-{i}": {"display_name": f"Acme Service {i}", "auth_mode": "API_KEY",
                               "proxy": {"base_url": f"https://api{i}.example.com"}} for i in range(995)}
    catalogue.update({name: {"display_name": name.title(), "auth_mode": "OAUTH2",
                             "proxy": {"base_url": "https://example.com"}}
                      for name in ("github", "stripe", "notion", "hubspot", "zoom")})
    with catalogue_system(tmp_path, "sqlite", catalogue) as running:
        http, seen = anonymous(), set()
        for name in catalogue:
            answer = http.get(f"{running.url}/images/template-logos/{name}.svg")
            assert answer.status_code == 200 and answer.headers["Content-Type"] == "image/svg+xml", name
            parsed(answer.content)
            seen.add(answer.headers["ETag"])
        assert len(seen) == len(catalogue)  # each provider's own logo, not one placeholder


def test_candidate_slugs_follow_the_display_name():
    assert logos.candidate_slugs("google-mail", "Gmail")[:2] == ["googlemail", "gmail"]
    assert "jira" in logos.candidate_slugs("jira-basic", "Jira (API token)")
    assert logos.candidate_slugs("monday", "monday.com")[1] == "mondaydotcom"


def test_initials_and_escaping():
    assert logos.initials("bamboohr", "BambooHR") == "Ba"
    assert logos.initials("x", "Acme Service 7") == "AS"
    assert logos.initials("sap", "SAP") == "SA"
    svg = logos.monogram_svg("evil", '<script>alert(1)</script> & "Co"')
    root = parsed(svg.encode())
    assert root.find(f"{SVG}script") is None and "<script>" in root.find(f"{SVG}title").text
