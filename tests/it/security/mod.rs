//! Security properties that cut across the SCEP endpoint, the RA console
//! and the JSON API: what a client can and cannot make scepd believe.

mod access_code_guessing;
mod audit_visibility;
mod challenge_binding;
mod device_cap_scope;
mod eku_allow_list;
mod export_and_input_safety;
mod first_mrao_password;
mod forwarded_headers;
mod key_file_modes;
mod keys_at_rest;
mod officer_credentials;
mod one_answer_after_unwrap;
mod renewal_identity;
mod request_lookup;
mod signatures_after_authentication;
mod single_des;
