"""The database: engine and transactions, tables and the migrations helper.
Repositories live with their domains.
"""
