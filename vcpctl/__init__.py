"""vcpctl: the command line for Virtual Cloud operators and application developers.

It is built on the public client library (:mod:`vcpd.client`) and the L0
config/key helpers, and on nothing else from the daemon.
"""
