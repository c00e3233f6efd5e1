"""The conversation: the service that runs a turn, its prompt, budgets and stored messages.
Owns the chat's wire protocol (WebSocket frames, REST bodies) and its SQL.
"""
