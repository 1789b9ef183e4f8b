import pytest

from units import celsius_to_fahrenheit, kg_to_pounds, km_to_miles


def test_km_to_miles():
    assert km_to_miles(1.609344) == pytest.approx(1.0)


def test_celsius_to_fahrenheit():
    assert celsius_to_fahrenheit(100) == pytest.approx(212.0)


def test_kg_to_pounds():
    assert kg_to_pounds(1) == pytest.approx(2.20462)
