"""A Tornado server that never imports otrace: python target_tornado.py -> "port N"."""

import sys

import tornado.ioloop
import tornado.web


class Hello(tornado.web.RequestHandler):
    def get(self) -> None:
        self.write({"ok": True, "otrace": "otrace.bootstrap" in sys.modules})


def main() -> None:
    app = tornado.web.Application([(r"/", Hello)])
    server = app.listen(0, address="127.0.0.1")
    port = next(iter(server._sockets.values())).getsockname()[1]
    print(f"port {port} otrace-imported={'otrace' in sys.modules}", flush=True)
    tornado.ioloop.IOLoop.current().start()


if __name__ == "__main__":
    main()
