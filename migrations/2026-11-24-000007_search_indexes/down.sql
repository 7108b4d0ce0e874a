DROP INDEX enrollment_requests_subject_trgm, enrollment_requests_cn_trgm, certificates_sans,
    certificates_subject_trgm, certificates_cn_trgm;
