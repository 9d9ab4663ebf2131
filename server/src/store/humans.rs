//! The `humans` aggregate: people who own agents and approve their requests.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Store, StoreError, Tx, flag};
use crate::ids::Subject;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HumanRecord {
    pub subject: Subject,
    pub email: String,
    pub name: String,
    pub active: bool,
    pub user_code_hash: Option<String>,
    pub created_at: i64,
    pub department: String,
    pub title: String,
    pub role: String,
    /// The subject of this person's manager.
    pub manager: Option<Subject>,
}

const COLUMNS: &str = "subject, email, name, active, user_code_hash, created_at, department, title, role, manager_subject";

fn from_row(row: &AnyRow) -> Result<HumanRecord, StoreError> {
    Ok(HumanRecord {
        subject: row.try_get("subject")?,
        email: row.try_get("email")?,
        name: row.try_get("name")?,
        active: flag(row.try_get("active")?),
        user_code_hash: row.try_get("user_code_hash")?,
        created_at: row.try_get("created_at")?,
        department: row.try_get("department")?,
        title: row.try_get("title")?,
        role: row.try_get("role")?,
        manager: row.try_get("manager_subject")?,
    })
}

impl Store {
    pub async fn insert_human(
        &self,
        tx: &mut Tx<'_>,
        human: &HumanRecord,
    ) -> Result<(), StoreError> {
        let sql = sqlx::AssertSqlSafe(format!(
            "INSERT INTO humans ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
        ));
        sqlx::query(sql)
            .bind(&human.subject)
            .bind(&human.email)
            .bind(&human.name)
            .bind(i64::from(human.active))
            .bind(&human.user_code_hash)
            .bind(human.created_at)
            .bind(&human.department)
            .bind(&human.title)
            .bind(&human.role)
            .bind(&human.manager)
            .execute(tx.conn())
            .await
            .map_err(StoreError::from_insert)?;
        self.directory_cache.humans.clear();
        Ok(())
    }

    pub async fn human(&self, subject: &str) -> Result<Option<HumanRecord>, StoreError> {
        self.cached_human(true, subject).await
    }

    /// `subject` as `tx` sees it (uncached: the transaction may have just written it).
    pub async fn human_in(
        &self,
        tx: &mut Tx<'_>,
        subject: &str,
    ) -> Result<Option<HumanRecord>, StoreError> {
        let sql = sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM humans WHERE subject = $1"));
        let row = sqlx::query(sql)
            .bind(subject)
            .fetch_optional(tx.conn())
            .await?;
        row.as_ref().map(from_row).transpose()
    }

    /// Resolves a CIBA `login_hint`: the subject, or else the e-mail address.
    pub async fn human_by_hint(&self, hint: &str) -> Result<Option<HumanRecord>, StoreError> {
        self.cached_human(false, hint).await
    }

    async fn cached_human(
        &self,
        by_subject: bool,
        key: &str,
    ) -> Result<Option<HumanRecord>, StoreError> {
        let cache_key = (by_subject, key.to_owned());
        if let Some(hit) = self.directory_cache.humans.get(&cache_key) {
            return Ok(hit);
        }
        let sql = if by_subject {
            sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM humans WHERE subject = $1"))
        } else {
            sqlx::AssertSqlSafe(format!(
                "SELECT {COLUMNS} FROM humans WHERE subject = $1 OR email = $1 ORDER BY (subject = $1) DESC LIMIT 1"
            ))
        };
        let row = sqlx::query(sql)
            .bind(key)
            .fetch_optional(self.reader())
            .await?;
        let human = row.as_ref().map(from_row).transpose()?;
        self.directory_cache.humans.put(cache_key, human.clone());
        Ok(human)
    }

    pub async fn list_humans(&self) -> Result<Vec<HumanRecord>, StoreError> {
        let sql = sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM humans ORDER BY subject"));
        let rows = sqlx::query(sql).fetch_all(self.reader()).await?;
        rows.iter().map(from_row).collect()
    }

    /// Sets whether `subject` is active, inside `tx`; false when no such human exists.
    /// How many humans are active and how many offboarded.
    pub async fn count_humans(&self) -> Result<(i64, i64), StoreError> {
        let row = sqlx::query(
            "SELECT COUNT(CASE WHEN active = 1 THEN 1 END) AS on_, \
             COUNT(CASE WHEN active = 1 THEN NULL ELSE 1 END) AS off_ FROM humans",
        )
        .fetch_one(self.reader())
        .await?;
        Ok((row.try_get("on_")?, row.try_get("off_")?))
    }

    /// Up to `limit` humans after `after` (keyset order by subject) whose subject, e-mail
    /// or name contains `search` (case-insensitive), for the console's list.
    /// One page of humans in subject order after `after`, those whose subject, e-mail or
    /// name starts with `search` (case-insensitive) when it is not empty.
    ///
    /// Prefix, not substring: a prefix is a range of each column's index (migration
    /// 0015), so a search among 100,000 people reads only what matches. A search of three
    /// characters or more collects the matches from the three indexes first; a shorter one
    /// matches so many people that walking the subjects in order finds a page sooner.
    pub async fn page_humans(
        &self,
        after: &str,
        search: &str,
        limit: i64,
    ) -> Result<Vec<HumanRecord>, StoreError> {
        let low = search.to_lowercase();
        if low.is_empty() {
            let sql = sqlx::AssertSqlSafe(format!(
                "SELECT {COLUMNS} FROM humans WHERE subject > $1 ORDER BY subject LIMIT $2"
            ));
            let rows = sqlx::query(sql)
                .bind(after)
                .bind(limit)
                .fetch_all(self.reader())
                .await?;
            return rows.iter().map(from_row).collect();
        }
        // Byte order on both backends (PostgreSQL's indexes are built `COLLATE "C"`), so
        // every string starting with `low` lies in [low, low + U+10FFFF).
        let high = format!("{low}\u{10FFFF}");
        let c = match self.backend() {
            super::Backend::Sqlite => "",
            super::Backend::Postgres => " COLLATE \"C\"",
        };
        let starts =
            |column: &str| format!("(LOWER({column}){c} >= $2 AND LOWER({column}){c} < $3)");
        let sql = if low.chars().count() >= 3 {
            format!(
                "SELECT {COLUMNS} FROM humans WHERE subject > $1 AND subject IN (\
                 SELECT subject FROM humans WHERE {} UNION \
                 SELECT subject FROM humans WHERE {} UNION \
                 SELECT subject FROM humans WHERE {}) ORDER BY subject LIMIT $4",
                starts("subject"),
                starts("email"),
                starts("name")
            )
        } else {
            format!(
                "SELECT {COLUMNS} FROM humans WHERE subject > $1 AND ({} OR {} OR {}) \
                 ORDER BY subject LIMIT $4",
                starts("subject"),
                starts("email"),
                starts("name")
            )
        };
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(after)
            .bind(&low)
            .bind(&high)
            .bind(limit)
            .fetch_all(self.reader())
            .await?;
        rows.iter().map(from_row).collect()
    }

    pub async fn set_human_active(
        &self,
        tx: &mut Tx<'_>,
        subject: &str,
        active: bool,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query("UPDATE humans SET active = $1 WHERE subject = $2")
            .bind(i64::from(active))
            .bind(subject)
            .execute(tx.conn())
            .await?;
        self.directory_cache.humans.clear();
        Ok(done.rows_affected() == 1)
    }

    /// Changes the attributes policies read; false when no such human exists.
    pub async fn update_human_profile(
        &self,
        tx: &mut Tx<'_>,
        h: &HumanRecord,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE humans SET email = $2, name = $3, department = $4, title = $5, role = $6, \
             manager_subject = $7 WHERE subject = $1",
        )
        .bind(&h.subject)
        .bind(&h.email)
        .bind(&h.name)
        .bind(&h.department)
        .bind(&h.title)
        .bind(&h.role)
        .bind(&h.manager)
        .execute(tx.conn())
        .await
        .map_err(StoreError::from_insert)?;
        self.directory_cache.humans.clear();
        Ok(done.rows_affected() == 1)
    }

    /// Active humans with `role`.
    pub async fn humans_with_role(&self, role: &str) -> Result<Vec<Subject>, StoreError> {
        let rows = sqlx::query(
            "SELECT subject FROM humans WHERE role = $1 AND active = 1 ORDER BY subject",
        )
        .bind(role)
        .fetch_all(self.reader())
        .await?;
        rows.iter().map(|r| Ok(r.try_get("subject")?)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testing::each_backend;

    #[tokio::test]
    async fn search_matches_the_start_of_subject_email_or_name_in_pages() {
        each_backend(|store| async move {
            let people = [
                ("alice", "alice@example.com", "Alice Martin"),
                ("bob", "robert.b@example.com", "Bob Alison"),
                ("carol", "carol@corp.example", "Carol Alvarez"),
                ("dave", "d@example.com", "Dave"),
                ("zed_1", "z%1@example.com", "Zed"),
            ];
            let mut tx = store.begin().await.unwrap();
            for (subject, email, name) in people {
                let h = HumanRecord {
                    subject: subject.into(),
                    email: email.into(),
                    name: name.into(),
                    active: true,
                    user_code_hash: None,
                    created_at: 1,
                    department: String::new(),
                    title: String::new(),
                    role: String::new(),
                    manager: None,
                };
                store.insert_human(&mut tx, &h).await.unwrap();
            }
            tx.commit().await.unwrap();
            let found = |after: &'static str, q: &'static str, limit: i64| {
                let store = store.clone();
                async move {
                    store
                        .page_humans(after, q, limit)
                        .await
                        .unwrap()
                        .into_iter()
                        .map(|h| h.subject)
                        .collect::<Vec<_>>()
                }
            };
            // Subject, e-mail or name, case-insensitively, from their start.
            assert_eq!(found("", "ali", 50).await, ["alice"]);
            assert_eq!(found("", "ROBERT", 50).await, ["bob"]);
            assert_eq!(found("", "carol alv", 50).await, ["carol"]);
            // Short queries take the other path, with the same answers.
            assert_eq!(found("", "d", 50).await, ["dave"]);
            assert_eq!(found("", "", 50).await.len(), 5);
            // Not a substring search: "lison" is inside a name, not at its start.
            assert!(found("", "lison", 50).await.is_empty());
            // LIKE's wildcards are plain characters here.
            assert_eq!(found("", "z%1", 50).await, ["zed_1"]);
            assert!(found("", "%", 50).await.is_empty());
            // Keyset pages over the matches, in subject order.
            assert_eq!(found("", "", 2).await, ["alice", "bob"]);
            assert_eq!(found("bob", "", 2).await, ["carol", "dave"]);
            // A search pages too: after "bob", "car" still finds carol, and after carol nothing.
            assert_eq!(found("bob", "car", 50).await, ["carol"]);
            assert!(found("carol", "car", 50).await.is_empty());
        })
        .await;
    }

    #[tokio::test]
    async fn insert_lookup_by_subject_or_email_and_conflict() {
        each_backend(|store| async move {
            let alice = HumanRecord {
                subject: "alice".into(),
                email: "alice@example.com".into(),
                name: "Alice".into(),
                active: true,
                user_code_hash: None,
                created_at: 1,
                department: "procurement".into(),
                title: "Buyer".into(),
                role: "buyer".into(),
                manager: None,
            };
            let mut tx = store.begin().await.unwrap();
            store.insert_human(&mut tx, &alice).await.unwrap();
            tx.commit().await.unwrap();
            assert_eq!(store.human("alice").await.unwrap(), Some(alice.clone()));
            assert_eq!(
                store.human_by_hint("alice@example.com").await.unwrap(),
                Some(alice.clone())
            );
            assert_eq!(store.human_by_hint("bob").await.unwrap(), None);
            let mut tx = store.begin().await.unwrap();
            assert!(matches!(
                store.insert_human(&mut tx, &alice).await,
                Err(StoreError::Conflict)
            ));
            drop(tx);
            let mut tx = store.begin().await.unwrap();
            assert!(
                store
                    .set_human_active(&mut tx, "alice", false)
                    .await
                    .unwrap()
            );
            assert!(
                !store
                    .set_human_active(&mut tx, "nobody", false)
                    .await
                    .unwrap()
            );
            tx.commit().await.unwrap();
            assert!(!store.human("alice").await.unwrap().unwrap().active);
            assert_eq!(store.list_humans().await.unwrap().len(), 1);
        })
        .await;
    }
}
