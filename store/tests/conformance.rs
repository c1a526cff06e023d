//! The storage conformance suite: every storage trait method, run on SQLite and on PostgreSQL.
//! One test binary.

#[path = "storage.rs"]
mod storage;
#[path = "storage_views.rs"]
mod storage_views;
