"""`resume-chat eval`: asks the configured model questions about the loaded resume through
the app itself, grades the answers, and reports a scorecard an owner can gate a release on.
"""
