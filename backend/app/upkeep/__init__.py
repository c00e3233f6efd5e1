"""Work nobody asks for: retention (purging idle conversations) and recovery (answering
questions left unanswered by a process that died).
"""
