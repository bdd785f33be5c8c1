"""The traceback page's gates: trusted hosts, the POST secret, the PIN and its throttle.

What is served before the PIN: **nothing but the PIN form.**  Until a browser has given the
PIN (and holds the cookie it earns), every page of the traceback server -- the index of
contexts, a context's page, an application's error page -- is the PIN form; no locals, no
trace ids, no secret.  The form posts to ``/pin`` with a form token (which only lets a
browser try a PIN) and is refused from another site (``Origin``/``Sec-Fetch-Site``) or an
untrusted ``Host`` (DNS rebinding).

Wrong PINs are throttled **per client** (its address): after :data:`FREE_TRIES` wrong tries
a client waits ``2**n`` seconds (at most :data:`MAX_WAIT`) before its next try, so a
guesser slows down while everyone else can still sign in.  ``tbpage -r`` in the shell (or
:meth:`Gates.reset_throttle`) forgets every client's failures.

Thread safety: the event-loop thread (handlers); :meth:`Gates.reset_throttle` and
:meth:`Gates.throttled` may be called from any thread (the shell's) and take a lock.
"""

from __future__ import annotations

import hmac
import re
import secrets
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import urlsplit

from otrace.errors import OTraceError

DEFAULT_TRUSTED_HOSTS = ("localhost", "127.0.0.1", "::1")
SECRET_HEADER = "X-OTrace-Secret"
FREE_TRIES = 3  # wrong PINs a client may type before it has to wait
MAX_WAIT = 300.0  # seconds, the longest wait between two tries of one client
MAX_CLIENTS = 10_000  # clients remembered (oldest forgotten first)


class Throttled(OTraceError):
    """A client must wait before its next PIN try."""

    def __init__(self, wait: float):
        super().__init__(f"too many wrong PINs from this client; try again in {wait:.0f} s")
        self.wait = wait


def host_name(host: str) -> str:
    """The name part of a ``Host`` header (``[::1]:8888`` -> ``::1``)."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1:].split("]", 1)[0]
    if host.count(":") == 1:
        return host.split(":", 1)[0]
    return host


class Gates:
    """The checks every request of the traceback page passes (see the module docstring).

    :param pin: True for a random PIN, a string for a fixed one, False for none.
    :param trusted_hosts: names accepted in ``Host``; ``.example.com`` also accepts its
        subdomains, ``*`` anything.
    :param clock: for tests.
    """

    def __init__(
        self,
        pin: bool | str = True,
        trusted_hosts: Iterable[str] = DEFAULT_TRUSTED_HOSTS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.trusted_hosts = tuple(h.lower().strip("[]") for h in trusted_hosts)
        self.secret = secrets.token_urlsafe(24)
        self.form_token = secrets.token_urlsafe(24)  # lets a browser try a PIN, nothing more
        if pin is True:
            digits = f"{secrets.randbelow(10**9):09d}"
            self.pin: str | None = f"{digits[:3]}-{digits[3:6]}-{digits[6:]}"
        elif pin:
            self.pin = str(pin)
        else:
            self.pin = None
        self.cookie_name = "otrace_tb_" + secrets.token_hex(4)
        self._tokens: set[str] = set()
        self._clock = clock
        self._lock = threading.Lock()
        self._failures: dict[str, tuple[int, float]] = {}  # client -> (wrong tries, next ok)

    # -- requests ------------------------------------------------------------------------
    def check_host(self, request: Any) -> str | None:
        """None if the ``Host`` header names a trusted host, else why not."""
        name = host_name(request.headers.get("Host", ""))
        if not name:
            return "missing Host header"
        for trusted in self.trusted_hosts:
            if (
                trusted == "*"
                or name == trusted
                or (trusted.startswith(".") and (name.endswith(trusted) or name == trusted[1:]))
            ):
                return None
        return f"untrusted host {name!r}"

    def check_origin(self, request: Any) -> str | None:
        """None if a POST comes from this site (trusted host, same origin)."""
        why = self.check_host(request)
        if why:
            return why
        site = request.headers.get("Sec-Fetch-Site")
        if site is not None and site not in ("same-origin", "none"):
            return f"cross-site request ({site})"
        origin = request.headers.get("Origin")
        if origin is not None:
            parts = urlsplit(origin)
            if origin == "null" or (parts.scheme, parts.netloc.lower()) != (
                request.protocol,
                request.host.lower(),
            ):
                return f"cross-origin request from {origin}"
        return None

    def check_post(self, request: Any, token: str | None = None) -> str | None:
        """None if a POST may proceed: same origin and the secret (or, with ``token``, the
        PIN form's token, which the PIN form page carries instead of the secret)."""
        why = self.check_origin(request)
        if why:
            return why
        if token is not None:
            if hmac.compare_digest(token.encode(), self.form_token.encode()):
                return None
            return "missing or wrong form token"
        given = request.headers.get(SECRET_HEADER, "")
        if not hmac.compare_digest(given.encode(), self.secret.encode()):
            return "missing or wrong secret"
        return None

    # -- the PIN -------------------------------------------------------------------------
    def is_authorized(self, handler: Any) -> bool:
        """True if this browser may see pages and evaluate (PIN given, or no PIN)."""
        if self.pin is None:
            return True
        token = handler.get_cookie(self.cookie_name) or ""
        return any(hmac.compare_digest(token, t) for t in self._tokens)

    def try_pin(self, pin: str, client: str = "") -> str | None:
        """A new auth token if ``pin`` is right; None if wrong.

        :raises Throttled: ``client`` must wait before trying again.
        """
        if self.pin is None:
            return secrets.token_urlsafe(32)
        now = self._clock()
        with self._lock:
            tries, next_ok = self._failures.get(client, (0, 0.0))
            if now < next_ok:
                raise Throttled(next_ok - now)
        norm = re.sub(r"\D", "", pin)
        if norm and hmac.compare_digest(norm, re.sub(r"\D", "", self.pin)):
            token = secrets.token_urlsafe(32)
            with self._lock:
                self._tokens.add(token)
                self._failures.pop(client, None)
            return token
        with self._lock:
            tries += 1
            wait = 0.0 if tries < FREE_TRIES else min(2.0 ** (tries - FREE_TRIES), MAX_WAIT)
            self._failures.pop(client, None)
            self._failures[client] = (tries, now + wait)
            while len(self._failures) > MAX_CLIENTS:
                del self._failures[next(iter(self._failures))]
        return None

    def reset_throttle(self) -> int:
        """Forget every client's wrong PINs; how many clients were waiting.  Any thread."""
        with self._lock:
            n = len(self._failures)
            self._failures.clear()
        return n

    def throttled(self) -> list[tuple[str, int, float]]:
        """(client, wrong tries, seconds to wait) for clients with wrong tries.  Any thread."""
        now = self._clock()
        with self._lock:
            return [(c, n, max(0.0, t - now)) for c, (n, t) in self._failures.items()]
