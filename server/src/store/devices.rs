//! The `devices` aggregate (a human's enrolled wallets) and the enrollment invitations
//! that create them.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Store, StoreError, Tx};
use crate::ids::Subject;

/// One enrolled wallet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceRecord {
    pub id: String,
    pub subject: Subject,
    /// RFC 7638 thumbprint of the device key; how API calls find the device.
    pub key_jkt: String,
    /// The device key's public JWK (JSON text).
    pub key_jwk: String,
    /// `ios`, `android` or `desktop`.
    pub platform: String,
    pub name: Option<String>,
    /// `apns`, `fcm`, `live` or `none`.
    pub push_channel: String,
    pub push_token: Option<String>,
    pub push_token_invalid_at: Option<i64>,
    pub attestation: Option<String>,
    /// The passkey, as the relying party stores it (base64url of webauthn_rp encodings).
    pub passkey_id: String,
    pub passkey_user: String,
    pub passkey_static: String,
    pub passkey_dynamic: String,
    pub passkey_transports: i64,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
    pub disabled_at: Option<i64>,
    pub disabled_reason: Option<String>,
}

const COLUMNS: &str = "id, subject, key_jkt, key_jwk, platform, name, push_channel, push_token, \
    push_token_invalid_at, attestation, passkey_id, passkey_user, passkey_static, passkey_dynamic, \
    passkey_transports, created_at, last_used_at, disabled_at, disabled_reason";

fn from_row(row: &AnyRow) -> Result<DeviceRecord, StoreError> {
    Ok(DeviceRecord {
        id: row.try_get("id")?,
        subject: row.try_get("subject")?,
        key_jkt: row.try_get("key_jkt")?,
        key_jwk: row.try_get("key_jwk")?,
        platform: row.try_get("platform")?,
        name: row.try_get("name")?,
        push_channel: row.try_get("push_channel")?,
        push_token: row.try_get("push_token")?,
        push_token_invalid_at: row.try_get("push_token_invalid_at")?,
        attestation: row.try_get("attestation")?,
        passkey_id: row.try_get("passkey_id")?,
        passkey_user: row.try_get("passkey_user")?,
        passkey_static: row.try_get("passkey_static")?,
        passkey_dynamic: row.try_get("passkey_dynamic")?,
        passkey_transports: row.try_get("passkey_transports")?,
        created_at: row.try_get("created_at")?,
        last_used_at: row.try_get("last_used_at")?,
        disabled_at: row.try_get("disabled_at")?,
        disabled_reason: row.try_get("disabled_reason")?,
    })
}

/// An enrollment invitation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvitationRecord {
    pub id: String,
    pub subject: String,
    pub token_hash: String,
    pub created_by: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub redeemed_at: Option<i64>,
    pub device_id: Option<String>,
}

fn invitation_from_row(row: &AnyRow) -> Result<InvitationRecord, StoreError> {
    Ok(InvitationRecord {
        id: row.try_get("id")?,
        subject: row.try_get("subject")?,
        token_hash: row.try_get("token_hash")?,
        created_by: row.try_get("created_by")?,
        created_at: row.try_get("created_at")?,
        expires_at: row.try_get("expires_at")?,
        redeemed_at: row.try_get("redeemed_at")?,
        device_id: row.try_get("device_id")?,
    })
}

const INVITATION_COLUMNS: &str =
    "id, subject, token_hash, created_by, created_at, expires_at, redeemed_at, device_id";

impl Store {
    pub async fn insert_invitation(
        &self,
        tx: &mut Tx<'_>,
        inv: &InvitationRecord,
    ) -> Result<(), StoreError> {
        let sql = sqlx::AssertSqlSafe(format!(
            "INSERT INTO enrollment_invitations ({INVITATION_COLUMNS}) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
        ));
        sqlx::query(sql)
            .bind(&inv.id)
            .bind(&inv.subject)
            .bind(&inv.token_hash)
            .bind(&inv.created_by)
            .bind(inv.created_at)
            .bind(inv.expires_at)
            .bind(inv.redeemed_at)
            .bind(&inv.device_id)
            .execute(tx.conn())
            .await
            .map_err(StoreError::from_insert)?;
        Ok(())
    }

    pub async fn invitation_by_token_hash(
        &self,
        token_hash: &str,
    ) -> Result<Option<InvitationRecord>, StoreError> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {INVITATION_COLUMNS} FROM enrollment_invitations WHERE token_hash = $1"
        ));
        let row = sqlx::query(sql)
            .bind(token_hash)
            .fetch_optional(self.writer())
            .await?;
        row.as_ref().map(invitation_from_row).transpose()
    }

    /// Marks an unexpired, unredeemed invitation redeemed by `device_id`, inside `tx`.
    /// False when it was redeemed meanwhile (or expired): an invitation works once.
    pub async fn redeem_invitation(
        &self,
        tx: &mut Tx<'_>,
        id: &str,
        device_id: &str,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE enrollment_invitations SET redeemed_at = $1, device_id = $2 \
             WHERE id = $3 AND redeemed_at IS NULL AND expires_at > $1",
        )
        .bind(now_ms)
        .bind(device_id)
        .bind(id)
        .execute(tx.conn())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// `subject`'s enabled devices that have a push channel (cached for the directory TTL).
    pub async fn push_targets(&self, subject: &str) -> Result<Vec<DeviceRecord>, StoreError> {
        let cache = &self.directory_cache.push_targets;
        if let Some(hit) = cache.get(&subject.to_owned()) {
            return Ok(hit);
        }
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM devices WHERE subject = $1 AND disabled_at IS NULL \
             AND push_channel <> 'none' ORDER BY created_at"
        ));
        let rows = sqlx::query(sql)
            .bind(subject)
            .fetch_all(self.reader())
            .await?;
        let devices = rows.iter().map(from_row).collect::<Result<Vec<_>, _>>()?;
        cache.put(subject.to_owned(), devices.clone());
        Ok(devices)
    }

    /// Drops the cached push targets. Writers in a transaction call it again after their
    /// commit: a reader between the write and the commit may have cached the old rows.
    pub fn forget_push_targets(&self) {
        self.directory_cache.push_targets.clear();
    }

    pub async fn insert_device(&self, tx: &mut Tx<'_>, d: &DeviceRecord) -> Result<(), StoreError> {
        self.directory_cache.push_targets.clear();
        let sql = sqlx::AssertSqlSafe(format!(
            "INSERT INTO devices ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, \
             $11, $12, $13, $14, $15, $16, $17, $18, $19)"
        ));
        sqlx::query(sql)
            .bind(&d.id)
            .bind(&d.subject)
            .bind(&d.key_jkt)
            .bind(&d.key_jwk)
            .bind(&d.platform)
            .bind(&d.name)
            .bind(&d.push_channel)
            .bind(&d.push_token)
            .bind(d.push_token_invalid_at)
            .bind(&d.attestation)
            .bind(&d.passkey_id)
            .bind(&d.passkey_user)
            .bind(&d.passkey_static)
            .bind(&d.passkey_dynamic)
            .bind(d.passkey_transports)
            .bind(d.created_at)
            .bind(d.last_used_at)
            .bind(d.disabled_at)
            .bind(&d.disabled_reason)
            .execute(tx.conn())
            .await
            .map_err(StoreError::from_insert)?;
        Ok(())
    }

    pub async fn device(&self, id: &str) -> Result<Option<DeviceRecord>, StoreError> {
        let sql = sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM devices WHERE id = $1"));
        let row = sqlx::query(sql)
            .bind(id)
            .fetch_optional(self.reader())
            .await?;
        row.as_ref().map(from_row).transpose()
    }

    pub async fn device_by_key(&self, jkt: &str) -> Result<Option<DeviceRecord>, StoreError> {
        let sql = sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM devices WHERE key_jkt = $1"));
        let row = sqlx::query(sql)
            .bind(jkt)
            .fetch_optional(self.reader())
            .await?;
        row.as_ref().map(from_row).transpose()
    }

    /// A human's devices (all of them when `subject` is `None`), newest first.
    pub async fn devices(&self, subject: Option<&str>) -> Result<Vec<DeviceRecord>, StoreError> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM devices WHERE ($1 = '' OR subject = $1) ORDER BY created_at DESC"
        ));
        let rows = sqlx::query(sql)
            .bind(subject.unwrap_or(""))
            .fetch_all(self.reader())
            .await?;
        rows.iter().map(from_row).collect()
    }

    /// Disables a device (it stays listed, with the reason). False if unknown or already
    /// disabled.
    pub async fn disable_device(
        &self,
        tx: &mut Tx<'_>,
        id: &str,
        reason: &str,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        self.directory_cache.push_targets.clear();
        let done = sqlx::query(
            "UPDATE devices SET disabled_at = $1, disabled_reason = $2 WHERE id = $3 AND disabled_at IS NULL",
        )
        .bind(now_ms)
        .bind(reason)
        .bind(id)
        .execute(tx.conn())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Disables, inside `tx`, every enabled device of `subject`; returns their ids.
    pub async fn disable_devices_of(
        &self,
        tx: &mut Tx<'_>,
        subject: &str,
        reason: &str,
        now_ms: i64,
    ) -> Result<Vec<String>, StoreError> {
        self.directory_cache.push_targets.clear();
        let rows = sqlx::query(
            "UPDATE devices SET disabled_at = $1, disabled_reason = $2 \
             WHERE subject = $3 AND disabled_at IS NULL RETURNING id",
        )
        .bind(now_ms)
        .bind(reason)
        .bind(subject)
        .fetch_all(tx.conn())
        .await?;
        let mut ids = rows
            .iter()
            .map(|r| r.try_get("id"))
            .collect::<Result<Vec<String>, _>>()?;
        ids.sort();
        Ok(ids)
    }

    /// Stores the passkey's state after an assertion (signature counter, UV, backup),
    /// inside `tx`, and notes the device was used.
    pub async fn update_passkey_state(
        &self,
        tx: &mut Tx<'_>,
        device_id: &str,
        dynamic: &str,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE devices SET passkey_dynamic = $1, last_used_at = $2 WHERE id = $3")
            .bind(dynamic)
            .bind(now_ms)
            .bind(device_id)
            .execute(tx.conn())
            .await?;
        Ok(())
    }
}
