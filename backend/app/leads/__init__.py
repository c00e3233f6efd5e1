"""Leads (contact details from the form or the model's tool) and knowledge gaps (questions
the resume could not answer): storing, listing, exporting, and announcing new leads.
"""
