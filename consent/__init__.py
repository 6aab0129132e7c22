"""Consent: privacy policies and their versions, per-purpose consent, withdrawal, receipts and the ledger."""
