import pytest

from src.domain.errors import ValidationError
from src.domain.paths import ProductionPath, UnknownPathPolicy, resolve_path


@pytest.mark.parametrize("name", ["fashion", "beauty", "eats", "cinema", "cartoon"])
def test_each_known_production_path_resolves_to_itself(name):
    resolved = resolve_path(name, UnknownPathPolicy.REJECT)
    assert resolved.path is ProductionPath(name) and resolved.warning is None


@pytest.mark.parametrize("value", [None, "", "sports"])
def test_a_missing_or_unknown_path_falls_back_to_fashion_with_a_warning(value):
    resolved = resolve_path(value, UnknownPathPolicy.USE_DEFAULT)
    assert resolved.path is ProductionPath.FASHION
    assert "using fashion" in resolved.warning


@pytest.mark.parametrize("value", [None, "sports"])
def test_the_reject_policy_refuses_a_missing_or_unknown_path_with_the_known_ones(value):
    with pytest.raises(ValidationError) as info:
        resolve_path(value, UnknownPathPolicy.REJECT)
    assert "cartoon" in info.value.fields["production_path"][0]


def test_path_names_are_matched_case_insensitively():
    assert resolve_path(" Cinema ", UnknownPathPolicy.REJECT).path is ProductionPath.CINEMA
