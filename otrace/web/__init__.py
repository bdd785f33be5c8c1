"""Browser front ends for otrace, served by Tornado.

* :mod:`otrace.web.traceback` -- the interactive traceback page (live and post-mortem);
* ``otrace.web.bridge`` -- the ``/osh/web`` websocket bridge.

Nothing is imported here, so importing one front end never pulls in the others.
"""
