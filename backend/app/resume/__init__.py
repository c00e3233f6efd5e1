"""The resume: loading it from Markdown, text, JSON Resume, PDF or Word, what is derived
from it (system prompt, excerpt index), and the public profile.
"""
