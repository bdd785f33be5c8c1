"""Fleet consoles: one console over every attachable process of a program.

A client of the console protocol (:mod:`otrace.service.protocol`): it attaches to each
worker's service as ``otrace attach`` would, and routes what the operator types
(:mod:`otrace.fleet.session`).  Nothing here runs inside the program.
"""
