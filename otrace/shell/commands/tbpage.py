"""The traceback page from the shell: where it is, who is throttled for wrong PINs, reset."""

from __future__ import annotations

from otrace.errors import OTraceError
from otrace.shell.registry import Args, Option, command


@command(
    "tbpage",
    options=(Option("r", "reset: forget every client's wrong PINs"),),
    outside_osh=True,
)
def tbpage(sh, args: Args) -> None:
    """Show the traceback page's URL and the clients waiting after wrong PINs; -r resets.

    Wrong PINs are throttled per client (a growing wait after a few tries); -r lets every
    client try again at once.
    """
    server = getattr(sh.runtime, "traceback_server", None)
    if server is None:
        raise OTraceError("No traceback page is served (see otrace.tornado.enable_tracebacks)")
    if args.flag("r"):
        n = server.reset_throttle()
        sh.out.write(f"Forgot the wrong PINs of {n} client{'' if n == 1 else 's'}")
        return
    sh.out.write(f"{server.index_url()}  (PIN {'on' if server.pin else 'off'})")
    for client, tries, wait in server.gates.throttled():
        sh.out.write(
            f"  {client}: {tries} wrong PIN{'' if tries == 1 else 's'}, waits {wait:.0f} s"
        )
