-- The weakest envelope cipher a profile accepts (RFC 8894 §3.2.2: the
-- client picks the content cipher from what GetCACaps lists). Ranked
-- des < des3 < aes (AES-128/192/256 alike). 'des' accepts everything, as
-- before: micromdm's scepclient envelopes with single DES and nothing else.
-- Single DES can be broken offline; a one-time challenge is spent by then,
-- a static access code is not, so access codes need DES3 whatever this
-- says (enroll::policy::cipher_allowed).
--
-- The revision trigger fires on every UPDATE of the row, so changing it
-- raises the revision like any other setting.
ALTER TABLE device_profiles
    ADD COLUMN min_cipher TEXT NOT NULL DEFAULT 'des'
        CONSTRAINT device_profiles_min_cipher CHECK (min_cipher IN ('des', 'des3', 'aes'));
