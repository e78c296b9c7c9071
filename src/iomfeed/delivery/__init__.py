"""Getting digest messages to people: transports (outbox, SMTP) and the ledger-driven send."""
