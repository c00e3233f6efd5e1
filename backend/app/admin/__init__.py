"""The owner's side, as one vertical slice: routes behind the admin token, the service,
its queries and its wire schemas (listing, transcripts, exports, stats, reload).
"""
