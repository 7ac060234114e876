//! Login challenges, and deleting a user's ephemeral state.

use super::store::Stmt;

/// The challenge statements.
pub(crate) struct ChallengeSql {
    /// `(challenge_hash, user_id, expires_at)`: inserts or replaces the challenge.
    pub(crate) put_challenge: Stmt,
    /// `(challenge_hash)` -> `user_id, expires_at`.
    pub(crate) get_challenge: Stmt,
    /// `(challenge_hash)` -> `user_id, expires_at` of the challenge it deletes.
    pub(crate) take_challenge: Stmt,
    /// `(user_id)`.
    pub(crate) delete_user_challenges: Stmt,
    /// `(now)`: deletes the challenges expired at `now`.
    pub(crate) purge_challenges: Stmt,
}

/// The `EphemeralStore` methods on challenges, and `delete_user_state`.
macro_rules! methods {
    () => {
        async fn put_challenge(
            &self,
            hash: &ChallengeHash,
            record: &ChallengeRecord,
        ) -> Result<(), Self::Error> {
            q(&self.q.challenges.put_challenge)
                .bind(&hash[..])
                .bind(record.user_id.as_str())
                .bind(to_i64(record.expires_at, "expires_at")?)
                .execute(&self.pool)
                .await?;
            Ok(())
        }

        async fn get_challenge(
            &self,
            hash: &ChallengeHash,
            now: u64,
        ) -> Result<Option<ChallengeRecord>, Self::Error> {
            let row = q(&self.q.challenges.get_challenge)
                .bind(&hash[..])
                .fetch_optional(&self.pool)
                .await?;
            match row {
                Some(row) => challenge_from_row(&row, now),
                None => Ok(None),
            }
        }

        async fn take_challenge(
            &self,
            hash: &ChallengeHash,
            now: u64,
        ) -> Result<Option<ChallengeRecord>, Self::Error> {
            // One statement: the row is gone for every other caller the moment it is returned.
            // An expired challenge is deleted as well, and reported as absent.
            let row = q(&self.q.challenges.take_challenge)
                .bind(&hash[..])
                .fetch_optional(&self.pool)
                .await?;
            match row {
                Some(row) => challenge_from_row(&row, now),
                None => Ok(None),
            }
        }

        async fn delete_user_state(
            &self,
            user_id: &str,
            limiter_keys: &[String],
        ) -> Result<u64, Self::Error> {
            let mut tx = begin(&self.pool).await?;
            let mut count = q(&self.q.challenges.delete_user_challenges)
                .bind(user_id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            for key in limiter_keys {
                count += q(&self.q.limiter.delete_limiter)
                    .bind(key.as_str())
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
            }
            tx.commit().await?;
            Ok(count)
        }
    };
}
pub(crate) use methods;

/// Reading a challenge row: a challenge past its expiry reads as absent.
macro_rules! rows {
    () => {
        fn challenge_from_row(
            row: &Row,
            now: u64,
        ) -> Result<Option<ChallengeRecord>, SqlStoreError> {
            let expires_at = to_u64(row.try_get("expires_at")?, "expires_at")?;
            if now < expires_at {
                Ok(Some(ChallengeRecord {
                    user_id: row.try_get("user_id")?,
                    expires_at,
                }))
            } else {
                Ok(None)
            }
        }
    };
}
pub(crate) use rows;
