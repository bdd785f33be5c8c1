"""A small program to patch: every kind of callable the patcher must handle."""

import functools

CALLS = []


class Base:
    def inherited(self, x):
        return ("base", x)

    def greet(self):
        return "hello from Base"


class Cart(Base):
    rate = 2

    def __init__(self):
        self.items = []
        self.__secret = "s3cret"

    def add_item(self, name, qty=1):
        self.items.append((name, qty))
        return len(self.items)

    @classmethod
    def make(cls, n):
        return ("made", cls.__name__, n)

    @staticmethod
    def double(x):
        return x * 2

    def __hidden(self):
        return "hidden " + self.__secret

    def reveal(self):
        return self.__hidden()

    def greet(self):
        return "cart says " + super().greet()


def plain(a, b=2):
    return a + b


def make_counter():
    count = 0

    def counter(step=1):
        nonlocal count
        count += step
        return count

    return counter


counter = make_counter()


def logged(func):
    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        CALLS.append(func.__name__)
        return func(*args, **kwargs)

    return wrapper


@logged
def decorated(x):
    return x + 1


callbacks = [plain]
