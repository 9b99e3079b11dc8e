"""The report layer: tables, figures, the claims ledger and the site, over every track's results."""
