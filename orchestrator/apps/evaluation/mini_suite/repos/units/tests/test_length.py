import pytest

from units.length import parse_length, to_meters


def test_metric_units():
    assert to_meters(3, "km") == 3000.0
    assert to_meters(25, "cm") == 0.25


def test_unknown_unit():
    with pytest.raises(ValueError):
        to_meters(1, "furlong")


def test_parse_length():
    assert parse_length("12 km") == 12000.0
    assert parse_length("5m") == 5.0
