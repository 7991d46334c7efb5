//! The upstream `Authorization` rules of SPEC §3, first that applies.
