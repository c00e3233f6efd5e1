"""Answers while they stream: each one kept once and followed by any number of sockets,
in this process through the hub, across instances through the Redis relay.
"""
