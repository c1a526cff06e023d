//! The end-to-end tests of the `debcover` command and the coordinator it serves: real
//! processes, real databases (SQLite and PostgreSQL), real Debian data. One test binary; each
//! module is one story.

#[path = "campaigns.rs"]
mod campaigns;
#[path = "coverage.rs"]
mod coverage;
#[path = "e2e.rs"]
mod e2e;
#[path = "embedded.rs"]
mod embedded;
#[path = "hostile.rs"]
mod hostile;
#[path = "python_client.rs"]
mod python_client;
#[path = "real_debian.rs"]
mod real_debian;
#[path = "resources.rs"]
mod resources;
#[path = "scheduler.rs"]
mod scheduler;
#[path = "tls.rs"]
mod tls;
#[path = "views.rs"]
mod views;
