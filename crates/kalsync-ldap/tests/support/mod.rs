//! Test support shared by the LDAP tests and benchmark.
pub mod slapd;
