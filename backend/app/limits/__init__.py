"""Who may ask and how often: rate limits and concurrency slots, in memory or on Redis,
and the client address they are counted by.
"""
