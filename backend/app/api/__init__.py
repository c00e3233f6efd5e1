"""The HTTP edge: routes, dependencies, middleware, error mapping and the WebSocket.
It calls the domains; nothing below imports from it.
"""
