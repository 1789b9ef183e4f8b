from textkit.slug import slugify


def test_slugify_basic():
    assert slugify("Hello, World!") == "hello-world"
    assert slugify("  Python 3  ") == "python-3"
