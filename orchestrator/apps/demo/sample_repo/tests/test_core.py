from inventory.core import most_valuable, total_value

ITEMS = [
    {"name": "bolt", "price": 0.25, "quantity": 400},
    {"name": "drill", "price": 59.0, "quantity": 2},
]


def test_total_value_counts_quantities():
    assert total_value(ITEMS) == 0.25 * 400 + 59.0 * 2


def test_most_valuable():
    assert most_valuable(ITEMS) == "drill"
    assert most_valuable([]) is None
