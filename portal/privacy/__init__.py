"""A patient's rights over their personal data (India's DPDP Act 2023): a summary of it
to download (``export``), and closing the account with erasure (``closure``), keeping the
financial records the law requires. Decisions: docs/privacy.md."""
