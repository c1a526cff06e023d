//! [`KeyStore`] for SQLite.

use sqlx::Row;

use super::SqliteStore;
use debcover_core::attestation::{KeyRole, PublishedKey};
use crate::{KeyStore, SqlResult, StoreError};

impl KeyStore for SqliteStore {
    async fn node_keys(&self) -> Result<Vec<PublishedKey>, StoreError> {
        let rows = sqlx::query(
            "SELECT o.name, n.name, k.public_key, k.valid_from, COALESCE(k.valid_until, n.revoked_at)
             FROM rebuild_node_keys k JOIN rebuild_nodes n ON n.id = k.node_id
             JOIN rebuild_operators o ON o.id = n.operator_id
             ORDER BY o.name, n.name, k.valid_from, k.id",
        )
        .fetch_all(&self.reader)
        .await.db()?;
        Ok(rows
            .iter()
            .map(|r| PublishedKey {
                role: KeyRole::Node,
                operator: r.get(0),
                node: r.get(1),
                public_key: r.get(2),
                valid_from: r.get(3),
                valid_until: r.get(4),
            })
            .collect())
    }

    async fn record_coordinator_key(&self, public_key: &str, now: i64) -> Result<(), StoreError> {
        let mut tx = self.write_tx().await?;
        sqlx::query("INSERT INTO coordinator_keys (public_key, valid_from) VALUES (?, ?) ON CONFLICT DO NOTHING")
            .bind(public_key)
            .bind(now)
            .execute(&mut *tx)
            .await.db()?;
        tx.commit().await.db()?;
        Ok(())
    }

    async fn coordinator_keys(&self) -> Result<Vec<PublishedKey>, StoreError> {
        let rows = sqlx::query("SELECT public_key, valid_from, valid_until FROM coordinator_keys ORDER BY valid_from, public_key")
            .fetch_all(&self.reader)
            .await.db()?;
        Ok(rows
            .iter()
            .map(|r| PublishedKey {
                role: KeyRole::Coordinator,
                operator: String::new(),
                node: String::new(),
                public_key: r.get(0),
                valid_from: r.get(1),
                valid_until: r.get(2),
            })
            .collect())
    }
}
