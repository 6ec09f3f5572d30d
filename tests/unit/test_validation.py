import pytest

from shared.errors import InvalidInput
from shared.validation import format_shape, named_inputs
from tests.unit.conftest import DIGITS, digit_image


def validate_instances(instances, signature, max_instances, max_elements, may_hold_booleans=True):
    """Rows of a single-input model, checked through the path the API takes (``named_inputs``)."""
    named_inputs({"instances": instances}, signature, max_instances, max_elements, may_hold_booleans)


def validate(instances, max_instances=16, max_elements=10_000):
    validate_instances(instances, DIGITS, max_instances, max_elements)


def test_well_shaped_instances_pass():
    validate([digit_image(0), digit_image(16.0)])


def test_wrong_shape_names_index_expected_and_received():
    with pytest.raises(InvalidInput) as caught:
        validate([digit_image(), [1, 2, 3]])
    assert caught.value.detail == "instances[1] has shape (3,), model digits expects (8, 8)"
    assert caught.value.extra == {"instance": 1, "input": "image", "expected_shape": [8, 8], "received_shape": [3]}


def test_scalar_instance_reports_empty_shape():
    with pytest.raises(InvalidInput, match=r"instances\[0\] has shape \(\), model digits expects \(8, 8\)"):
        validate([5])


def test_ragged_instance_is_rejected():
    image = digit_image()
    image[3] = [1.0] * 7
    with pytest.raises(InvalidInput, match=r"instances\[0\]\[3\] has length 7.*ragged"):
        validate([image])


@pytest.mark.parametrize("bad, word", [("1", "a string"), (True, "a boolean"), (None, "null"),
                                        ({"a": 1}, "an object")])
def test_non_numbers_are_rejected_with_their_position(bad, word):
    image = digit_image()
    image[2][5] = bad
    with pytest.raises(InvalidInput, match=rf"instances\[0\]\[2\]\[5\] is {word}, expected a number"):
        validate([image])


def test_values_outside_float32_range_are_rejected():
    image = digit_image()
    image[0][0] = 1e300
    with pytest.raises(InvalidInput, match="outside the range"):
        validate([image])


def test_empty_instances_are_rejected():
    with pytest.raises(InvalidInput, match="empty"):
        validate([])


def test_too_many_instances_are_rejected():
    with pytest.raises(InvalidInput, match="17 instances exceed the limit of 16"):
        validate([digit_image()] * 17, max_instances=16)


def test_too_many_elements_are_rejected():
    with pytest.raises(InvalidInput, match="more than 100 numbers"):
        validate([digit_image()] * 2, max_elements=100)


def test_deep_nesting_is_reported_not_walked():
    deep = 1
    for _ in range(500):
        deep = [deep]
    with pytest.raises(InvalidInput, match="has shape"):
        validate([deep])


def test_shapes_format_like_python_tuples():
    assert format_shape((8, 8)) == "(8, 8)"
    assert format_shape((3,)) == "(3,)"
    assert format_shape(()) == "()"
    assert format_shape((None, 4)) == "(None, 4)"


def test_the_numpy_fast_path_accepts_what_the_walk_accepts():
    validate_instances([digit_image(3)] * 4, DIGITS, 16, 10_000, may_hold_booleans=False)


@pytest.mark.parametrize("bad", [[[1, 2, 3]], [[["x"] * 8] * 8], [[[1e300] * 8] * 8]])
def test_the_fast_path_falls_back_to_precise_errors(bad):
    with pytest.raises(InvalidInput, match=r"instances\[0\]"):
        validate_instances(bad, DIGITS, 16, 10_000, may_hold_booleans=False)


def test_ragged_input_is_caught_on_the_fast_path_too():
    image = digit_image()
    image[7] = [1.0] * 9
    with pytest.raises(InvalidInput, match="ragged"):
        validate_instances([image], DIGITS, 16, 10_000, may_hold_booleans=False)


def test_booleans_are_caught_when_the_body_may_hold_them():
    image = digit_image()
    image[0][0] = True
    with pytest.raises(InvalidInput, match="a boolean"):
        validate_instances([image], DIGITS, 16, 10_000, may_hold_booleans=True)


def test_arrays_are_checked_for_shape_dtype_and_values():
    import numpy as np

    from shared.validation import validate_array

    validate_array(np.zeros((3, 8, 8), dtype=np.uint8), DIGITS, 16, 10_000)
    for bad, message in [(np.zeros((3, 8, 7)), r"instances have shape \(8, 7\), model digits expects \(8, 8\)"),
                         (np.array(["a"]), "dtype"), (np.zeros((0, 8, 8)), "empty"),
                         (np.full((1, 8, 8), np.nan), "NaN"), (np.float32(1.0), "scalar"),
                         (np.full((1, 8, 8), 1e300), "outside the range")]:
        with pytest.raises(InvalidInput, match=message):
            validate_array(np.asarray(bad), DIGITS, 16, 10_000)
