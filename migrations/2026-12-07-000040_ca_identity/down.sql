DROP TABLE ca_identity;
