"""docs/math.md#layer-map: the layer map is computed from the depths, or given explicitly."""
import pytest

from tinybert.distillation import mapping
from tinybert.errors import UserError


def test_six_layer_student_under_twelve_layer_teacher_learns_even_layers():
    layer_map = mapping.uniform(12, 6)
    assert layer_map.attention == ((1, 2), (2, 4), (3, 6), (4, 8), (5, 10), (6, 12))
    assert layer_map.hidden == ((0, 0),) + layer_map.attention


def test_four_layer_student_learns_layers_3_6_9_12():
    layer_map = mapping.uniform(12, 4)
    assert [t for _, t in layer_map.attention] == [3, 6, 9, 12]
    assert [t for _, t in layer_map.hidden] == [0, 3, 6, 9, 12]


def test_depths_that_do_not_divide_are_refused_with_a_suggested_map():
    with pytest.raises(UserError, match="--layer_map"):
        mapping.uniform(12, 5)


def test_explicit_map_overrides_and_is_validated():
    assert [t for _, t in mapping.build(12, 5, "2,5,7,10,12").attention] == [2, 5, 7, 10, 12]
    with pytest.raises(UserError):
        mapping.build(12, 4, "3,6,9")
    with pytest.raises(UserError):
        mapping.build(12, 2, "6,13")
    with pytest.raises(UserError):
        mapping.build(12, 2, "six,12")


def test_map_describes_itself():
    assert "0->0" in mapping.uniform(4, 2).describe() and "2->4" in mapping.uniform(4, 2).describe()
