-- The verified OpenPGP signer of a clearsigned buildinfo (debcover_core::signature): the
-- key's fingerprint and first user id; NULL when unsigned or signed by a key of no configured
-- keyring.
ALTER TABLE builds ADD COLUMN signer TEXT;
