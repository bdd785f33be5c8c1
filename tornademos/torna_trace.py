#!/usr/bin/env python3
"""torna_trace: a Tornado 6 form that answers a number's reciprocal, with otrace embedded.

The names and shapes are the original UseWithTornado tutorial's: ``GetHandler.get`` holds
the request for 77 through ``traceassert(number != "77", label="hold_check",
action="hold")`` (when ``trace_active`` is on, as torna_trace.trc sets it) and
``GetHandler.respond(number)`` computes the answer; ``Request_stats`` counts requests.
While 77 is held, every other request is still served; ``cd ~~``, look, ``resume``.
``shutdown`` stops the server (``quit`` only detaches the console).

    cd tornademos && python torna_trace.py [--port=8888] [--addr=127.0.0.1]
"""

import asyncio
import logging
import os
import sys

import tornado.httpserver
import tornado.ioloop
import tornado.netutil
import tornado.options
import tornado.web
from tornado.options import define, options

HERE = os.path.dirname(os.path.abspath(__file__))
if __name__ == "__main__":  # run from a checkout: find the otrace package next to us
    sys.path.insert(0, os.path.dirname(HERE))

import otrace.tornado  # noqa: E402
from otrace import OShell, traceassert  # noqa: E402

Page_template = """<html>
<head><title>Hello Trace</title></head>
<body>
  <h2>Hello Trace</h2>
  <form method="get" action="/">
    Find reciprocal of:
    <input id="number" name="number" type="text" autocomplete="off" autofocus>
    <input type="submit" value="Submit">
  </form>
  <p>
  <span>%s</span>
</body>
</html>
"""

# Request statistics
Request_stats = {"count": 0, "path": ""}


class GetHandler(otrace.tornado.HoldAwareMixin, tornado.web.RequestHandler):
    """``GET /?number=N``; 77 is held until ``resume``."""

    async def get(self) -> None:
        Request_stats["count"] += 1
        Request_stats["path"] = self.request.uri

        # Retrieve user input
        number = self.get_argument("number", None)

        # Trace assertion: hold this request (and only this one) for 77
        await traceassert(number != "77", label="hold_check", action="hold")

        if self.disconnected:  # the browser gave up while the request was held
            return
        if number is None:
            # No user input; display input form
            self.finish(Page_template % "")
        else:
            # Process user input and display response
            self.finish(Page_template % self.respond(number))

    def respond(self, number: str) -> str:
        # Respond to request by processing user input
        value = float(number)

        # Trace assertion (uncomment with `edit GetHandler.respond` to try it)
        ##traceassert(value > 0.001, label="num_check")

        # Compute reciprocal of number
        response = f"The reciprocal of {value} is {1.0 / value}"
        return response


def _no_access_log(handler: tornado.web.RequestHandler) -> None:
    """Tornado's access log would write over the console; the shell shows what matters."""


async def main() -> None:
    # Set up tornado application to handle "/" url only
    app = tornado.web.Application(handlers=[(r"/", GetHandler)], log_function=_no_access_log)

    # Start tornado HTTP server (--port=0: any free port, printed)
    sockets = tornado.netutil.bind_sockets(options.port, address=options.addr)
    http_server = tornado.httpserver.HTTPServer(app)
    http_server.add_sockets(sockets)
    port = sockets[0].getsockname()[1]
    print(f"Listening on {options.addr}:{port}", file=sys.stderr, flush=True)

    # Test function that raises an exception
    def test_fun() -> None:
        raise Exception("TEST EXCEPTION")

    # Initialize OShell instance (to run on separate thread)
    IO_loop = tornado.ioloop.IOLoop.current()
    stopped = asyncio.Event()
    trace_shell = OShell(
        locals_dict=locals(),
        globals_dict=globals(),
        allow_unsafe=True,
        init_file=os.path.join(HERE, "torna_trace.trc"),
        new_thread=True,
        hold_wrapper=otrace.tornado.hold_wrapper,
        eventloop_callback=IO_loop.add_callback,
        listen=True,  # otrace attach PID opens more consoles
    )
    otrace.tornado.attach(trace_shell, IO_loop, on_stop=stopped.set)  # shutdown stops it
    try:
        # Start oshell, then serve until its shutdown
        trace_shell.loop()
        await stopped.wait()
    finally:
        trace_shell.shutdown()  # releases every hold
        http_server.stop()
        await http_server.close_all_connections()
    print("Server stopped", file=sys.stderr, flush=True)


def _command_line() -> None:
    # Define command line options
    define("port", default=8888, help="run on the given port (0: any free port)", type=int)
    define("addr", default="127.0.0.1", help="IP address")
    tornado.options.options.logging = "none"  # Tornado's own log lines would mix with the shell
    tornado.options.parse_command_line()
    logging.getLogger("tornado").setLevel(logging.ERROR)
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    _command_line()
