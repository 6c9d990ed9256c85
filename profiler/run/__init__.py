"""The parts of a session: its target, the handshake, the repetitions, the checks beyond timing.

`profiler.session.Session` puts them together; each part is a class it inherits, over the state in `state`.
"""
