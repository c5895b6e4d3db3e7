"""One code, one status: every error the code base builds agrees with common.errors.STATUS."""

from common import errors
from tests.support.error_codes import raise_sites

SITES, COMPUTED = raise_sites()


def test_every_code_built_has_the_one_status_of_the_table():
    wrong = {code: sorted(sites) for code, sites in SITES.items()
             if code not in errors.BY_ROUTE and {status for status, _ in sites} != {errors.STATUS.get(code)}}
    assert wrong == {}, "a code built with a status other than common.errors.STATUS gives (or missing from it)"


def test_route_dependent_codes_stay_within_what_nango_answers():
    assert not set(errors.BY_ROUTE) & set(errors.STATUS)
    for code, allowed in errors.BY_ROUTE.items():
        assert {status for status, _ in SITES[code]} <= allowed, code


def test_the_table_lists_only_codes_in_use_and_no_status_is_computed():
    assert set(errors.STATUS) <= set(SITES), "a code in the table that nothing builds"
    assert COMPUTED == []  # a literal code with a computed status would escape the table


def test_the_walk_sees_subclass_defaults():
    # Forbidden("…") carries no code= keyword: the walk must still count it as forbidden/403.
    assert any(where.startswith("services/") for _, where in SITES["forbidden"])
    assert SITES["too_many_request"] and {s for s, _ in SITES["too_many_request"]} == {429}
