"""Each kind of callable patched from a file, called, then unpatched."""

from __future__ import annotations

import textwrap

import pytest

from otrace.tracing import patching as engine
from tests.rt import PATCHES


def src(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


def test_instance_method(prog, t, patchfile, sh):
    cart = prog.Cart()
    path = patchfile(
        src("""
        def add_item(self, name, qty=1):
            self.items.append((name.upper(), qty * 10))
            return -len(self.items)
    """)
    )
    assert t.out(f"edit Cart.add_item < {path}") == "Patched Cart.add_item"
    assert cart.add_item("pen") == -1
    assert cart.items == [("PEN", 10)]
    assert sh.patches["Cart.add_item"] is prog.Cart.add_item
    assert t.out("ls /osh/patches/*") == "/osh/patches/Cart.add_item"
    assert "name.upper()" in t.out("view -i Cart.add_item")
    assert t.out("unpatch Cart.add_item") == "Unpatching Cart.add_item"
    assert cart.add_item("ink") == 2
    assert cart.items[-1] == ("ink", 1)
    assert "Cart.add_item" not in sh.patches
    assert "name.upper()" not in t.out("view -i Cart.add_item")
    assert not hasattr(prog.Cart.add_item, "_otrace_patch_source")


def test_classmethod_and_staticmethod(prog, t, patchfile):
    # written without the decorators, as the editor shows them: they are kept
    t.out(
        "edit Cart.make < "
        + patchfile('def make(cls, n):\n    return ("new", cls.__name__, n + 1)\n')
    )
    t.out("edit Cart.double < " + patchfile("def double(x):\n    return x * 3\n"))
    assert prog.Cart.make(1) == ("new", "Cart", 2)
    assert prog.Cart().make(1) == ("new", "Cart", 2)
    assert prog.Cart.double(5) == 15
    assert isinstance(vars(prog.Cart)["make"], classmethod)
    assert isinstance(vars(prog.Cart)["double"], staticmethod)
    t.out("unpatch Cart.make")
    t.out("unpatch Cart.double")
    assert prog.Cart.make(1) == ("made", "Cart", 1)
    assert prog.Cart.double(5) == 10


def test_module_function_and_aliases(prog, t, patchfile):
    from tests.patching.prog import plain as alias

    assert (
        t.out("edit plain < " + patchfile("def plain(a, b=100):\n    return a * b\n"))
        == "Patched plain"
    )
    assert prog.plain(3) == 300
    assert alias(3) == 300  # from-import alias runs the new code too
    assert prog.callbacks[0](2, 2) == 4  # and so does a stored callback
    t.out("unpatch plain")
    assert alias(3) == 5
    assert prog.plain(3, 4) == 7


def test_private_method_with_mangled_names(prog, t, patchfile):
    cart = prog.Cart()
    path = patchfile(
        src("""
        def __hidden(self):
            return "patched " + self.__secret.upper()
    """)
    )
    assert t.out(f"edit Cart.__hidden < {path}") == "Patched Cart.__hidden"
    assert cart.reveal() == "patched S3CRET"
    t.out("unpatch Cart.__hidden")
    assert cart.reveal() == "hidden s3cret"


def test_super_keeps_working(prog, t, patchfile):
    path = patchfile(
        src("""
        def greet(self):
            return "patched cart: " + super().greet()
    """)
    )
    t.out(f"edit Cart.greet < {path}")
    assert prog.Cart().greet() == "patched cart: hello from Base"
    assert PATCHES["Cart.greet"].mode == "in place"


def test_inherited_method_goes_on_the_named_class(prog, t, patchfile):
    path = patchfile(
        src("""
        def inherited(self, x):
            return ("cart", super().inherited(x))
    """)
    )
    out = t.out(f"edit Cart.inherited < {path}")
    assert out.splitlines()[0] == "Patched Cart.inherited"
    assert "inherited" in out  # the rebinding is explained
    assert prog.Cart().inherited(1) == ("cart", ("base", 1))
    assert prog.Base().inherited(1) == ("base", 1)  # the base class is untouched
    assert "inherited" in vars(prog.Cart)
    t.out("unpatch Cart.inherited")
    assert "inherited" not in vars(prog.Cart)
    assert prog.Cart().inherited(1) == ("base", 1)


def test_patch_through_an_instance_path(prog, sh, t, patchfile):
    prog.cart = prog.Cart()
    t.out(
        "edit cart.add_item < "
        + patchfile('def add_item(self, name, qty=1):\n    return "via instance"\n')
    )
    assert prog.Cart().add_item("x") == "via instance"
    assert "Cart.add_item" in sh.patches


def test_closure_function(prog, t, patchfile):
    assert prog.counter() == 1
    same_free = src("""
        def counter(step=1):
            nonlocal count
            count += step * 100
            return count
    """)
    t.out(f"edit counter < {patchfile(same_free)}")
    assert PATCHES["counter"].mode == "in place"
    assert prog.counter() == 101  # the closure's state is kept
    t.out("unpatch counter")
    assert prog.counter() == 102
    no_free = "def counter(step=1):\n    return -step\n"
    out = t.out(f"edit counter < {patchfile(no_free)}")
    assert "free variables" in out
    assert prog.counter() == -1
    t.out("unpatch counter")
    assert prog.counter() == 103


def test_decorated_function_keeps_its_decorator(prog, t, patchfile):
    t.out("edit decorated < " + patchfile("def decorated(x):\n    return x + 1000\n"))
    assert prog.decorated(1) == 1001
    assert prog.CALLS == ["decorated"]  # the decorator still runs around the new code


def test_patch_can_call_the_original(prog, t, patchfile):
    path = patchfile(
        src("""
        def add_item(self, name, qty=1):
            n = getattr(self.add_item, "_otrace_unpatched_function")(self, name, qty)
            return ("wrapped", n)
    """)
    )
    t.out(f"edit Cart.add_item < {path}")
    cart = prog.Cart()
    assert cart.add_item("a") == ("wrapped", 1)
    assert cart.items == [("a", 1)]
    assert engine.original(cart.add_item)(cart, "b") == 2
    assert prog.Cart.add_item._otrace_patch_parent is prog.Cart


def test_repatch_keeps_the_true_original(prog, t, patchfile):
    t.out("edit plain < " + patchfile("def plain(a, b=2):\n    return 1\n"))
    assert (
        t.out("edit -f plain < " + patchfile("def plain(a, b=2):\n    return 2\n"))
        == "Patched plain"
    )
    assert prog.plain(0) == 2
    assert prog.plain._otrace_unpatched_function(1) == 3
    t.out("unpatch plain")
    assert prog.plain(1) == 3


def test_traceback_shows_patch_lines(prog, t, patchfile):
    t.out(
        "edit plain < " + patchfile('def plain(a, b=2):\n    raise ValueError("from the patch")\n')
    )
    import traceback

    with pytest.raises(ValueError) as info:
        prog.plain(1)
    text = "".join(traceback.format_exception(info.value))
    assert 'raise ValueError("from the patch")' in text


def test_engine_api_adds_a_new_method(prog):
    p = engine.patch(prog.Cart, "extra", "def extra(self):\n    return 'new'\n")
    assert p.name == "Cart.extra"
    assert prog.Cart().extra() == "new"
    engine.unpatch("Cart.extra")
    assert not hasattr(prog.Cart, "extra")
