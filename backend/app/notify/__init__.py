"""Notifications to the owner (webhook, e-mail): an outbox table and the background sender
that delivers it at least once, with backoff, across restarts and instances.
"""
