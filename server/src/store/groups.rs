//! The `groups` aggregate: named groups of humans (approver routing `group:NAME`,
//! `principal.owner in Group::"NAME"` in policies) and their members.

use sqlx::Row;

use super::{Store, StoreError, Tx};
use crate::ids::Subject;

/// What adding a member did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Membership {
    Added,
    AlreadyMember,
    /// There is no such group or no such human.
    Missing,
}

impl Store {
    /// The groups `subject` is a member of, by name.
    pub async fn groups_of(&self, subject: &str) -> Result<Vec<String>, StoreError> {
        let cache = &self.directory_cache.groups;
        if let Some(hit) = cache.get(&subject.to_owned()) {
            return Ok(hit);
        }
        let rows = sqlx::query(
            "SELECT group_name FROM group_members WHERE subject = $1 ORDER BY group_name",
        )
        .bind(subject)
        .fetch_all(self.reader())
        .await?;
        let groups = rows
            .iter()
            .map(|r| r.try_get("group_name"))
            .collect::<Result<Vec<String>, _>>()?;
        cache.put(subject.to_owned(), groups.clone());
        Ok(groups)
    }

    /// Active members of group `name`.
    pub async fn group_members(&self, name: &str) -> Result<Vec<Subject>, StoreError> {
        let rows = sqlx::query(
            "SELECT m.subject FROM group_members m JOIN humans h ON h.subject = m.subject \
             WHERE m.group_name = $1 AND h.active = 1 ORDER BY m.subject",
        )
        .bind(name)
        .fetch_all(self.reader())
        .await?;
        rows.iter().map(|r| Ok(r.try_get("subject")?)).collect()
    }

    /// Every member of group `name` (active or not) as `tx` sees them, sorted.
    pub async fn group_members_in(
        &self,
        tx: &mut Tx<'_>,
        name: &str,
    ) -> Result<Vec<String>, StoreError> {
        let rows =
            sqlx::query("SELECT subject FROM group_members WHERE group_name = $1 ORDER BY subject")
                .bind(name)
                .fetch_all(tx.conn())
                .await?;
        rows.iter().map(|r| Ok(r.try_get("subject")?)).collect()
    }

    /// The display name of group `name` as `tx` sees it; `None` when there is no such group.
    pub async fn group_display_name_in(
        &self,
        tx: &mut Tx<'_>,
        name: &str,
    ) -> Result<Option<String>, StoreError> {
        let row = sqlx::query("SELECT display_name FROM groups WHERE name = $1")
            .bind(name)
            .fetch_optional(tx.conn())
            .await?;
        Ok(match row {
            Some(row) => Some(row.try_get("display_name")?),
            None => None,
        })
    }

    /// Creates group `name`; `Conflict` when it exists.
    pub async fn insert_group(
        &self,
        tx: &mut Tx<'_>,
        name: &str,
        display_name: &str,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO groups (name, display_name, created_at) VALUES ($1, $2, $3)")
            .bind(name)
            .bind(display_name)
            .bind(now_ms)
            .execute(tx.conn())
            .await
            .map_err(StoreError::from_insert)?;
        Ok(())
    }

    /// Renames group `name`'s display name; false when there is no such group.
    pub async fn set_group_display_name(
        &self,
        tx: &mut Tx<'_>,
        name: &str,
        display_name: &str,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query("UPDATE groups SET display_name = $1 WHERE name = $2")
            .bind(display_name)
            .bind(name)
            .execute(tx.conn())
            .await?;
        self.directory_cache.groups.clear();
        Ok(done.rows_affected() == 1)
    }

    /// Deletes group `name` and its memberships; false when there was none.
    pub async fn delete_group(&self, tx: &mut Tx<'_>, name: &str) -> Result<bool, StoreError> {
        sqlx::query("DELETE FROM group_members WHERE group_name = $1")
            .bind(name)
            .execute(tx.conn())
            .await?;
        let done = sqlx::query("DELETE FROM groups WHERE name = $1")
            .bind(name)
            .execute(tx.conn())
            .await?;
        self.directory_cache.groups.clear();
        Ok(done.rows_affected() == 1)
    }

    /// Every group with its members.
    pub async fn list_groups(&self) -> Result<Vec<(String, String, Vec<String>)>, StoreError> {
        let groups = sqlx::query("SELECT name, display_name FROM groups ORDER BY name")
            .fetch_all(self.reader())
            .await?;
        let members = sqlx::query("SELECT group_name, subject FROM group_members ORDER BY subject")
            .fetch_all(self.reader())
            .await?;
        let mut out = Vec::new();
        for g in &groups {
            let name: String = g.try_get("name")?;
            let mut subjects = Vec::new();
            for m in &members {
                if m.try_get::<String, _>("group_name")? == name {
                    subjects.push(m.try_get("subject")?);
                }
            }
            out.push((name, g.try_get("display_name")?, subjects));
        }
        Ok(out)
    }

    /// Adds `subject` to group `name`, inside `tx`.
    pub async fn add_group_member(
        &self,
        tx: &mut Tx<'_>,
        name: &str,
        subject: &str,
    ) -> Result<Membership, StoreError> {
        let done = sqlx::query(
            "INSERT INTO group_members (group_name, subject) \
             SELECT g.name, h.subject FROM groups g, humans h WHERE g.name = $1 AND h.subject = $2 \
             ON CONFLICT DO NOTHING",
        )
        .bind(name)
        .bind(subject)
        .execute(tx.conn())
        .await?;
        self.directory_cache.groups.clear();
        if done.rows_affected() == 1 {
            return Ok(Membership::Added);
        }
        let exists = sqlx::query(
            "SELECT 1 AS one FROM group_members WHERE group_name = $1 AND subject = $2",
        )
        .bind(name)
        .bind(subject)
        .fetch_optional(tx.conn())
        .await?;
        Ok(if exists.is_some() {
            Membership::AlreadyMember
        } else {
            Membership::Missing
        })
    }

    /// Removes `subject` from group `name`, inside `tx`; false when they were not a member.
    pub async fn remove_group_member(
        &self,
        tx: &mut Tx<'_>,
        name: &str,
        subject: &str,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM group_members WHERE group_name = $1 AND subject = $2")
            .bind(name)
            .bind(subject)
            .execute(tx.conn())
            .await?;
        self.directory_cache.groups.clear();
        Ok(done.rows_affected() == 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::humans::HumanRecord;
    use crate::store::testing::each_backend;

    #[tokio::test]
    async fn adding_tells_a_new_member_from_an_old_one_and_a_missing_group() {
        each_backend(|store| async move {
            let mut tx = store.begin().await.unwrap();
            let alice = HumanRecord {
                subject: "alice".into(),
                email: "alice@example.com".into(),
                name: "Alice".into(),
                active: false,
                user_code_hash: None,
                created_at: 1,
                department: String::new(),
                title: String::new(),
                role: String::new(),
                manager: None,
            };
            store.insert_human(&mut tx, &alice).await.unwrap();
            store.insert_group(&mut tx, "g", "G", 1).await.unwrap();
            assert_eq!(
                store.add_group_member(&mut tx, "g", "alice").await.unwrap(),
                Membership::Added
            );
            assert_eq!(
                store.add_group_member(&mut tx, "g", "alice").await.unwrap(),
                Membership::AlreadyMember
            );
            assert_eq!(
                store
                    .add_group_member(&mut tx, "nope", "alice")
                    .await
                    .unwrap(),
                Membership::Missing
            );
            assert_eq!(
                store
                    .add_group_member(&mut tx, "g", "nobody")
                    .await
                    .unwrap(),
                Membership::Missing
            );
            assert_eq!(
                store.group_members_in(&mut tx, "g").await.unwrap(),
                ["alice"],
                "inactive members count here"
            );
            assert!(
                store
                    .remove_group_member(&mut tx, "g", "alice")
                    .await
                    .unwrap()
            );
            assert!(
                !store
                    .remove_group_member(&mut tx, "g", "alice")
                    .await
                    .unwrap()
            );
            assert_eq!(
                store.group_display_name_in(&mut tx, "g").await.unwrap(),
                Some("G".into())
            );
            tx.commit().await.unwrap();
        })
        .await;
    }
}
