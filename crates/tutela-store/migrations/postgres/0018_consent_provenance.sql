-- Consent provenance (issue 14; R4, R18, R25, R43): how each ledger entry came to be
-- recorded, from a closed vocabulary (tutela_core::consent::ConsentMethod). The
-- recorder's role and token were already kept. Rows written before this schema read as
-- `legacy_unrecorded`: nothing is known of the subject's act behind them.
ALTER TABLE consents ADD COLUMN method TEXT NOT NULL DEFAULT 'legacy_unrecorded';
