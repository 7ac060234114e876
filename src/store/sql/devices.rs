//! Trusted browsers: the device tokens that let a browser skip the second factor for a while.

use super::store::Stmt;

/// The device token statements.
pub(crate) struct DeviceSql {
    /// `(token_hash, user_id, created_at, expires_at, trusted_until, label, last_used_at)`:
    /// inserts or replaces the token.
    pub(crate) put_device: Stmt,
    /// `(token_hash, now)` -> the token's columns after setting `last_used_at`, if it is live.
    pub(crate) use_device: Stmt,
    /// `(user_id, now)` -> the user's live tokens, oldest first.
    pub(crate) list_devices: Stmt,
    /// `(token_hash)`.
    pub(crate) delete_device: Stmt,
    /// `(user_id)`.
    pub(crate) delete_devices: Stmt,
    /// `(user_id)` -> the `token_hash` of every token it deletes.
    pub(crate) take_devices: Stmt,
    /// `(now)`: deletes the tokens expired at `now`.
    pub(crate) purge_devices: Stmt,
}

/// The `CredentialStore` methods on device tokens.
macro_rules! methods {
    () => {
        async fn put_device(
            &self,
            hash: &TokenHash,
            record: &DeviceRecord,
        ) -> Result<(), Self::Error> {
            q(&self.q.devices.put_device)
                .bind(&hash[..])
                .bind(record.user_id.as_str())
                .bind(to_i64(record.created_at, "created_at")?)
                .bind(to_i64(record.expires_at, "expires_at")?)
                .bind(opt_i64(record.trusted_until, "trusted_until")?)
                .bind(record.label.as_str())
                .bind(to_i64(record.last_used_at, "last_used_at")?)
                .execute(&self.pool)
                .await?;
            Ok(())
        }

        async fn use_device(
            &self,
            hash: &TokenHash,
            now: u64,
        ) -> Result<Option<DeviceRecord>, Self::Error> {
            // Every stored expiry is at most i64::MAX, so at a later `now` every token has
            // expired.
            let Ok(now) = i64::try_from(now) else {
                return Ok(None);
            };
            // One statement on the row it writes: a token deleted before it runs is not found,
            // one deleted after it was found was live when it was presented.
            q(&self.q.devices.use_device)
                .bind(&hash[..])
                .bind(now)
                .fetch_optional(&self.pool)
                .await?
                .as_ref()
                .map(device_from_row)
                .transpose()
        }

        async fn list_devices(
            &self,
            user_id: &str,
            now: u64,
        ) -> Result<Vec<(TokenHash, DeviceRecord)>, Self::Error> {
            let Ok(now) = i64::try_from(now) else {
                return Ok(Vec::new());
            };
            q(&self.q.devices.list_devices)
                .bind(user_id)
                .bind(now)
                .fetch_all(&self.pool)
                .await?
                .iter()
                .map(|row| {
                    let hash = token_hash(row.try_get("token_hash")?, "token_hash")?;
                    Ok((hash, device_from_row(row)?))
                })
                .collect()
        }

        async fn delete_device(&self, hash: &TokenHash) -> Result<bool, Self::Error> {
            let done = q(&self.q.devices.delete_device)
                .bind(&hash[..])
                .execute(&self.pool)
                .await?;
            Ok(done.rows_affected() == 1)
        }

        async fn delete_devices(&self, user_id: &str) -> Result<u64, Self::Error> {
            let done = q(&self.q.devices.delete_devices)
                .bind(user_id)
                .execute(&self.pool)
                .await?;
            Ok(done.rows_affected())
        }
    };
}
pub(crate) use methods;

/// Reading a device token row.
macro_rules! rows {
    () => {
        fn device_from_row(row: &Row) -> Result<DeviceRecord, SqlStoreError> {
            Ok(DeviceRecord {
                user_id: row.try_get("user_id")?,
                created_at: to_u64(row.try_get("created_at")?, "created_at")?,
                expires_at: to_u64(row.try_get("expires_at")?, "expires_at")?,
                trusted_until: opt_u64(row.try_get("trusted_until")?, "trusted_until")?,
                label: row.try_get("label")?,
                last_used_at: to_u64(row.try_get("last_used_at")?, "last_used_at")?,
            })
        }
    };
}
pub(crate) use rows;
