"""A small shop whose checkout fails; run under otrace it stores its trace contexts.

    otrace -f main shop.py       # reads shop.trc first: set pickle_file trace.db, traces
"""

import threading


class Cart:
    def __init__(self, owner):
        self.owner = owner
        self.items = {}

    def __repr__(self):
        return f"Cart(owner={self.owner!r}, {len(self.items)} items)"

    def add(self, name, qty, price):
        self.items[name] = (qty, price)
        return len(self.items)

    def checkout(self, discount):
        guard = threading.Lock()  # a lock cannot be stored: it stays a placeholder
        with guard:
            total = sum(qty * price for qty, price in self.items.values())
            return round(total / discount, 2)  # discount 0: ZeroDivisionError


def main():
    cart = Cart("ada")
    cart.add("apple", 3, 0.5)
    cart.add("pear", 2, 0.75)
    try:
        cart.checkout(0)
    except Exception:  # a catch-all: exception traces record what it catches
        pass  # a server would answer 500 and carry on
