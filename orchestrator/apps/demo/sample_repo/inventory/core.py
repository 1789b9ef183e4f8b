"""Values of stock items. An item is a dict with a name, a unit price and a quantity."""


def total_value(items):
    """The value of all items on the shelves."""
    return sum(item["price"] for item in items)


def most_valuable(items):
    """The name of the item whose stock is worth the most, or None for no items."""
    if not items:
        return None
    return max(items, key=lambda item: item["price"] * item["quantity"])["name"]
