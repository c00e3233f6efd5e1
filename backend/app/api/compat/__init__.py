"""Chat protocols other front ends speak: the Vercel AI SDK's UI message stream and the
OpenAI chat API, on the same service, limits, budgets and storage as the socket.
"""
