#!/usr/bin/env python3
"""hello_trace: the Getting Started program -- a reciprocal server with otrace embedded.

The names and shapes are the original tutorial's (``Request_stats`` is a dict,
``Receive(value).respond(request)`` computes the answer, ``submit(N)`` asks the running
server from the shell); inside, it is a Tornado 6 server on its own event loop.

    cd tornademos && python hello_trace.py [--addr 127.0.0.1] [--port 8888]

``~~w`` is this directory, so ``edit Receive.respond < ~~w/demo/Receive.respond.patch`` and
``source ~~w/demo/hello_test.osh`` work from wherever the program was started.
"""

import argparse
import asyncio
import copy
import html
import os
import re
import sys
import threading
import traceback
import urllib.error
import urllib.request

import tornado.httpserver
import tornado.netutil
import tornado.web

HERE = os.path.dirname(os.path.abspath(__file__))
if __name__ == "__main__":  # run from a checkout: find the otrace package next to us
    sys.path.insert(0, os.path.dirname(HERE))

import otrace  # noqa: E402
import otrace.tornado  # noqa: E402

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

Http_addr = "127.0.0.1"
Http_port = 8888


class GetHandler(tornado.web.RequestHandler):
    """``GET /?number=N``: the form, and the reciprocal of N."""

    def get(self) -> None:
        Request_stats["count"] += 1
        Request_stats["path"] = self.request.uri
        number = self.get_argument("number", None)
        if number is None:
            self.write(Page_template % "")
            return
        try:
            recv = Receive(number)
            resp = Page_template % html.escape(recv.respond(self))
        except Exception as excp:
            self.set_status(500)
            resp = f"Server error: {type(excp).__name__}: {excp}\n" + traceback.format_exc()
        self.write(resp)

    @property
    def client_address(self) -> tuple[str, int]:
        """(address, port) of the client, as the original's request object had."""
        stream = self.request.connection and getattr(self.request.connection, "stream", None)
        peer = getattr(getattr(stream, "socket", None), "getpeername", lambda: ("", 0))
        try:
            return tuple(peer()[:2])  # type: ignore[return-value]
        except OSError:
            return (self.request.remote_ip or "", 0)

    @property
    def headers(self) -> tornado.httputil.HTTPHeaders:
        """The request's headers (``request.headers`` in the tutorial)."""
        return self.request.headers


class Receive:
    """One submitted number, and the answer to it."""

    def __init__(self, value: str) -> None:
        self.value = float(value)

    def respond(self, request: GetHandler) -> str:
        # Respond to request by computing reciprocal and returning response string

        # Diagnostic print (enabled by demo/Receive.respond.patch)
        ##if self.value <= 0.001:
        ##    print("Client address", request.client_address)

        # Trace assertion (enabled by demo/Receive.respond.patch)
        ##otrace.traceassert(self.value > 0.001, label="num_check")

        # Compute reciprocal of number
        response = f"The reciprocal of {self.value} is {1.0 / self.value}"
        return response

    def __deepcopy__(self, memo: dict) -> "Receive":
        return self.__class__(copy.deepcopy(self.value, memo))


def submit(number: object, timeout: float | None = None) -> str:
    """Do what a browser does when the form is submitted with ``number``; return the answer.

    Call it from the otrace shell (it blocks until the server answers, so never on the
    event loop).  With ``timeout``, give up after that many seconds (e.g. while a request
    is held).
    """
    if otrace.holds.running_loop() is not None:
        return "submit() blocks: call it from the shell, not on the event loop"
    url = f"http://{Http_addr}:{Http_port}/?number={urllib.request.quote(str(number))}"

    def http_request() -> str:
        try:
            with urllib.request.urlopen(url, timeout=60) as response:
                text = response.read().decode("utf-8")
        except urllib.error.HTTPError as excp:
            return excp.read().decode("utf-8").split("\n")[0]
        except OSError as excp:
            return str(getattr(excp, "reason", excp))
        found = re.search(r"<span>(.*?)</span>", text, re.S)
        return html.unescape(found.group(1)) if found else text

    if not timeout:
        return http_request()
    result: list[str] = []
    worker = threading.Thread(target=lambda: result.append(http_request()), daemon=True)
    worker.start()
    worker.join(timeout)
    return result[0] if result else f"Timed out after {timeout} seconds"


def test_fun() -> None:
    """Test function that raises an exception."""
    raise Exception("TEST EXCEPTION")


def _no_access_log(handler: tornado.web.RequestHandler) -> None:
    """Tornado's access log would write over the console; the shell shows what matters."""


async def run_server(trace_shell: otrace.OShell | None = None) -> None:
    """Serve until the shell shuts down (or forever without a shell)."""
    stopped = asyncio.Event()
    if trace_shell is not None:
        otrace.tornado.attach(trace_shell, on_stop=stopped.set)
    global Http_port
    sockets = tornado.netutil.bind_sockets(Http_port, address=Http_addr)
    Http_port = sockets[0].getsockname()[1]  # the real one when started with --port 0
    server = tornado.httpserver.HTTPServer(
        tornado.web.Application([(r"/", GetHandler)], log_function=_no_access_log)
    )
    server.add_sockets(sockets)
    print(f"Listening on {Http_addr}:{Http_port}", flush=True)
    if trace_shell is not None:
        trace_shell.loop()  # the console runs in its own thread
    try:
        await stopped.wait()
    finally:
        server.stop()
        await server.close_all_connections()


def main(args: list[str] | None = None) -> None:
    """Run the server without otrace."""
    asyncio.run(run_server())


def trace_main(args: list[str] | None = None) -> None:
    """Run the server with the otrace console (in its own thread)."""
    trace_shell = otrace.OShell(
        globals_dict=globals(),
        locals_dict=globals(),
        allow_unsafe=True,
        new_thread=True,
        work_dir=HERE,
        listen=True,  # otrace attach PID opens more consoles
    )
    try:
        asyncio.run(run_server(trace_shell))
    except KeyboardInterrupt:
        pass
    finally:
        trace_shell.shutdown()  # clean shutdown of otrace (no hung threads)
    print("Server stopped", flush=True)


def _command_line() -> None:
    global Http_addr, Http_port
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--addr", default=Http_addr, help="address to listen on")
    parser.add_argument("--port", type=int, default=Http_port, help="port to listen on (0: any)")
    options = parser.parse_args()
    Http_addr, Http_port = options.addr, options.port
    trace_main()


if __name__ == "__main__":
    _command_line()
