//! Fresh PostgreSQL databases for tests (this crate's conformance suite and the end-to-end
//! tests): the one place outside the backends that opens a database connection.
//!
//! The server comes from `DEBCOVER_TEST_PG` (default
//! `postgres://postgres@127.0.0.1:5432/postgres`). Each [`TestDatabase`] is a new database,
//! dropped when the guard goes out of scope. Outside CI an unreachable server means "skip, with
//! a message"; under CI it is a failure.

use sqlx::Connection;

/// A database that exists until this guard is dropped.
pub struct TestDatabase {
    admin_url: String,
    name: String,
    /// URL of the new database.
    pub url: String,
}

impl TestDatabase {
    /// Create a database, or return None (after printing why) when PostgreSQL is unreachable
    /// outside CI. Panics under CI.
    pub async fn create() -> Option<TestDatabase> {
        let admin = std::env::var("DEBCOVER_TEST_PG")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned());
        let mut c = match sqlx::PgConnection::connect(&admin).await {
            Ok(c) => c,
            Err(e) if !in_ci() => {
                eprintln!("SKIPPING PostgreSQL variant: cannot connect to {admin}: {e}");
                return None;
            }
            Err(e) => panic!("PostgreSQL is required under CI but unreachable at {admin}: {e}"),
        };
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        let name = format!("debcover_test_{}_{nanos}", std::process::id());
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut c)
            .await
            .expect("CREATE DATABASE");
        let base = admin.rsplit_once('/').map(|(b, _)| b.to_owned()).unwrap_or(admin.clone());
        Some(TestDatabase { url: format!("{base}/{name}"), admin_url: admin, name })
    }

    /// Blocking variant for synchronous tests.
    pub fn create_blocking() -> Option<TestDatabase> {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
            .block_on(Self::create())
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let admin = self.admin_url.clone();
        let name = self.name.clone();
        // Drop cannot be async, and may run inside a runtime: use a thread with its own.
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else { return };
            rt.block_on(async {
                if let Ok(mut c) = sqlx::PgConnection::connect(&admin).await {
                    let _ = sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")))
                        .execute(&mut c)
                        .await;
                }
            })
        })
        .join();
    }
}

/// Running under CI (`CI` set): skips become failures.
pub fn in_ci() -> bool {
    std::env::var_os("CI").is_some()
}
