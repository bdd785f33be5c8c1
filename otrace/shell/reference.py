"""The command reference in docs/commands.rst, made from the command declarations.

``python -m otrace.shell.reference > docs/commands.rst`` rewrites it; a test checks that it
is up to date, so help and docs cannot drift apart.
"""

from __future__ import annotations

from otrace.params import TABLE
from otrace.shell import commands as _commands  # noqa: F401 - declares every command
from otrace.shell.registry import REGISTRY, builtin_aliases, render_words


def reference_rst() -> str:
    out = [
        "Command reference",
        "=================",
        "",
        "Made from the commands' own declarations (``help CMD`` shows the same text).",
        "",
    ]
    for name in sorted(REGISTRY):
        if name.startswith("_"):
            continue
        cmd = REGISTRY[name]
        out += [name, "-" * len(name), "", "::", ""]
        out += ["    " + line if line else "" for line in cmd.help_text().splitlines()]
        out.append("")
    out += ["Built-in aliases", "----------------", ""]
    for alias, words in sorted(builtin_aliases().items()):
        out.append(f"- ``{alias}``: ``{render_words(words)}``")
    out += ["", "Parameters (``set``)", "--------------------", ""]
    for p in sorted(TABLE, key=lambda p: p.name):
        out.append(f"- ``{p.name}`` ({p.type.__name__}, default ``{p.default!r}``): {p.help}")
    return "\n".join(out) + "\n"


if __name__ == "__main__":  # pragma: no cover
    import sys

    sys.stdout.write(reference_rst())
