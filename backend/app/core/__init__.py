"""What every part shares: settings, errors, logging and metrics.
It imports nothing else from the app.
"""
