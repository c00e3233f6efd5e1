"""The WebSocket edge: the /ws route, its one writer per socket, the registry of open
sockets, and the documentation-only entry for Swagger.
"""
