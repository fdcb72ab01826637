"""Manual wallet adjustments with maker-checker (POLICY.md "Wallet and manual adjustments")."""
