//! Token Status Lists: reserving blocks of index counters, and reading which entries of a
//! list are revoked.

use sqlx::Row;

use super::{Store, StoreError};

/// A block of counter values `[start, end)` of list `list_id`, reserved for one replica.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReservedBlock {
    pub list_id: i64,
    pub capacity: i64,
    pub start: i64,
    pub end: i64,
    /// Key of the list's index permutation (base64url).
    pub perm_key: String,
}

impl Store {
    /// Reserves `size` consecutive counter values in the newest list, opening a new list of
    /// `capacity` entries (with a fresh permutation key) when it is full. Safe to call from
    /// several replicas at once.
    pub async fn reserve_status_block(
        &self,
        size: i64,
        capacity: i64,
        new_perm_key: &str,
        now_ms: i64,
    ) -> Result<ReservedBlock, StoreError> {
        for _ in 0..8 {
            let row = sqlx::query(
                "UPDATE status_lists SET next_counter = next_counter + $1 \
                 WHERE id = (SELECT MAX(id) FROM status_lists) AND next_counter + $1 <= capacity \
                 RETURNING id, capacity, next_counter, perm_key",
            )
            .bind(size)
            .fetch_optional(self.writer())
            .await?;
            if let Some(row) = row {
                let end: i64 = row.try_get("next_counter")?;
                return Ok(ReservedBlock {
                    list_id: row.try_get("id")?,
                    capacity: row.try_get("capacity")?,
                    start: end - size,
                    end,
                    perm_key: row.try_get("perm_key")?,
                });
            }
            // No list yet, or the newest is full: open the next one. A concurrent replica
            // may win the same id; then we simply try again. (`WHERE TRUE` resolves SQLite's
            // parsing ambiguity between a join constraint and the upsert clause.)
            let inserted = sqlx::query(
                "INSERT INTO status_lists (id, capacity, next_counter, perm_key, created_at) \
                 SELECT COALESCE(MAX(id), 0) + 1, $1, 0, $2, $3 FROM status_lists WHERE TRUE \
                 ON CONFLICT (id) DO NOTHING",
            )
            .bind(capacity)
            .bind(new_perm_key)
            .bind(now_ms)
            .execute(self.writer())
            .await;
            match inserted {
                Ok(_) => {}
                Err(e) if StoreError::from_insert_ref(&e) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Err(StoreError::Corrupt(
            "could not reserve a status list block".into(),
        ))
    }

    /// Revision of list `list_id` (bumped by every revocation in it), if it exists.
    pub async fn status_list_revision(&self, list_id: i64) -> Result<Option<i64>, StoreError> {
        let row = sqlx::query("SELECT revision FROM status_lists WHERE id = $1")
            .bind(list_id)
            .fetch_optional(self.reader())
            .await?;
        Ok(match row {
            Some(r) => Some(r.try_get("revision")?),
            None => None,
        })
    }

    /// Capacity of list `list_id`, if it exists.
    pub async fn status_list_capacity(&self, list_id: i64) -> Result<Option<i64>, StoreError> {
        let row = sqlx::query("SELECT capacity FROM status_lists WHERE id = $1")
            .bind(list_id)
            .fetch_optional(self.reader())
            .await?;
        Ok(match row {
            Some(r) => Some(r.try_get("capacity")?),
            None => None,
        })
    }

    /// Indexes of list `list_id` whose credentials are revoked.
    pub async fn revoked_status_indexes(&self, list_id: i64) -> Result<Vec<i64>, StoreError> {
        let rows = sqlx::query(
            "SELECT token_status_idx FROM auth_requests \
             WHERE token_status_list = $1 AND token_revoked_at IS NOT NULL",
        )
        .bind(list_id)
        .fetch_all(self.reader())
        .await?;
        rows.iter()
            .map(|r| Ok(r.try_get("token_status_idx")?))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use crate::store::testing::each_backend;

    #[tokio::test]
    async fn blocks_are_disjoint_and_lists_roll_over_when_full() {
        each_backend(|store| async move {
            let a = store.reserve_status_block(4, 10, "k1", 0).await.unwrap();
            assert_eq!(
                (a.list_id, a.start, a.end, a.perm_key.as_str()),
                (1, 0, 4, "k1")
            );
            let b = store.reserve_status_block(4, 10, "k2", 0).await.unwrap();
            assert_eq!(
                (b.list_id, b.start, b.end, b.perm_key.as_str()),
                (1, 4, 8, "k1")
            );
            let c = store.reserve_status_block(4, 10, "k3", 0).await.unwrap();
            assert_eq!(
                (c.list_id, c.start, c.end, c.perm_key.as_str()),
                (2, 0, 4, "k3"),
                "list 1 had only 2 left"
            );
            assert_eq!(store.status_list_capacity(2).await.unwrap(), Some(10));
            assert_eq!(store.status_list_capacity(3).await.unwrap(), None);
            assert!(store.revoked_status_indexes(1).await.unwrap().is_empty());
        })
        .await;
    }
}
