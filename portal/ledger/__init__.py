"""Double-entry ledger: accounts, balanced transactions, balances as sums of entries.

Chart of accounts and sign conventions: docs/ledger.md. Use :mod:`portal.ledger.service`.
"""
