"""Tornado with an interactive traceback page in the browser (and the otrace console).

    python tornademos/debug_app.py --debug --port=8000 [--address=127.0.0.1]

``/`` says hello; ``/error/`` raises.  With ``--debug`` the error page is interactive:
every frame's source and locals, and a prompt in each frame (the PIN is printed on this
console).  The same exception is a trace context under ``/osh/recent/exceptions`` in the
otrace console, which runs alongside; ``shutdown`` there stops the server.  Without ``--debug``
errors are Tornado's plain 500.  (``--port=0``: any free port, printed.)
"""

from __future__ import annotations

import asyncio

import tornado.httpserver
import tornado.netutil
import tornado.web
from tornado.options import define, options, parse_command_line

import otrace
import otrace.tornado
from otrace.tornado import enable_tracebacks

define("debug", default=False, type=bool, help="Run in debug mode (interactive error pages)")
define("port", default=8000, type=int, help="Port on which to listen")
define("address", default="127.0.0.1", help="Address to listen on (loopback unless told otherwise)")


class IndexHandler(tornado.web.RequestHandler):
    def get(self) -> None:
        self.write("Hello, world!")


class BrokenHandler(tornado.web.RequestHandler):
    def get(self) -> None:
        visitor = self.request.remote_ip
        raise Exception(f"This is a test of the emergency broadcast system (for {visitor}).")


def create_application(debug: bool = False, port: int = 8000) -> tornado.web.Application:
    """The demo application; in debug mode with the traceback page turned on."""
    handlers = [
        (r"/", IndexHandler),
        (r"/error/", BrokenHandler),
    ]
    # autoreload would re-exec the process under the console's feet; keep it off.  The
    # access log would write a line over the console for every request: errors still log.
    app = tornado.web.Application(
        handlers, debug=debug, autoreload=False, log_function=_log_errors_only
    )
    enable_tracebacks(app, base_url=f"http://localhost:{port}")  # the one line; no-op unless debug
    return app


def _log_errors_only(handler: tornado.web.RequestHandler) -> None:
    if handler.get_status() >= 500:
        tornado.web.app_log.warning("%d %s", handler.get_status(), handler._request_summary())


def start_console(stopped: asyncio.Event) -> otrace.OShell:
    """Run the otrace console in its own thread, beside the IOLoop; ``shutdown`` sets
    ``stopped`` (the server then stops); ``quit`` detaches the console."""
    shell = otrace.OShell(
        globals_dict=globals(),
        locals_dict=globals(),
        allow_unsafe=True,
        new_thread=True,
        listen=True,  # otrace attach PID opens more consoles
    )
    otrace.tornado.attach(shell, on_stop=stopped.set)
    shell.loop()
    return shell


async def serve() -> None:
    sockets = tornado.netutil.bind_sockets(options.port, address=options.address)
    port = sockets[0].getsockname()[1]
    app = create_application(debug=options.debug, port=port)
    server = tornado.httpserver.HTTPServer(app)
    server.add_sockets(sockets)
    print(f"Serving on http://localhost:{port}/ (debug {'on' if options.debug else 'off'})")
    stopped = asyncio.Event()
    shell = start_console(stopped) if options.debug else None
    try:
        await stopped.wait()
    finally:
        if shell is not None:
            shell.shutdown()
        server.stop()
    print("Server stopped")


def main() -> None:
    parse_command_line()
    try:
        asyncio.run(serve())
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
