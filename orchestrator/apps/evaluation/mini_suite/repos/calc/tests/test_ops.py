from calc.ops import round_to, safe_div


def test_safe_div():
    assert safe_div(6, 3) == 2
    assert safe_div(1, 0) == 0.0
    assert safe_div(1, 0, default=None) is None


def test_round_to():
    assert round_to(7, 5) == 5
    assert round_to(8, 5) == 10
