"""The toy program of the reference's examples."""


class Base:
    def inherited(self, x):
        return x


class Cart(Base):
    """A shopping cart"""

    tax = 0.1

    def __init__(self, owner):
        self.owner = owner
        self.items = []

    def add_item(self, name, qty=1):
        self.items.append((name, qty))
        return len(self.items)

    def boom(self, d):
        return helper(d)


def helper(d):
    z = 42  # noqa: F841
    return 1.0 / d


def plain(a, b=2):
    return a + b


stats = {"count": 3, "path": "/x"}
lst = [10, 20, "thirty"]
c = Cart("ann")
