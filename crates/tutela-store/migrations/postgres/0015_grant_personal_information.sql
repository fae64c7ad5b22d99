-- A support grant may explicitly cover personal information, approved by the customer
-- (R7, R22); without it, an overseas engineer sees support data redacted.
ALTER TABLE grants ADD COLUMN personal_information BOOLEAN NOT NULL DEFAULT FALSE;
