//! `CredentialStore` for [`MemoryStore`]: authenticators, backup codes, recovery requests,
//! scheduled changes, notice and device tokens, each operation one critical section.

use std::convert::Infallible;
use std::future::Future;

use subtle::ConstantTimeEq;

use super::{MemoryStore, ct_eq, done};
use crate::store::{
    BackupCodeHash, CredentialRecord, CredentialStore, DeletedCredentials, DeviceRecord,
    RecoveryRecord, RemoveCredential, ScheduledChangeRecord, TokenHash,
};

impl CredentialStore for MemoryStore {
    type Error = Infallible;

    fn get_credentials(
        &self,
        user_id: &str,
    ) -> impl Future<Output = Result<Vec<CredentialRecord>, Infallible>> + Send {
        done(
            self.lock()
                .credentials
                .get(user_id)
                .cloned()
                .unwrap_or_default(),
        )
    }

    /// Stores the record with `enabled` forced to `false`, whatever the caller passed.
    fn put_pending(
        &self,
        user_id: &str,
        record: &CredentialRecord,
        only_if_none_enabled: bool,
    ) -> impl Future<Output = Result<bool, Infallible>> + Send {
        let mut inner = self.lock();
        if only_if_none_enabled && inner.has_enabled(user_id) {
            return done(false);
        }
        let mut record = record.clone();
        record.enabled = false;
        let list = inner.credentials.entry(user_id.to_owned()).or_default();
        if list.iter().any(|c| c.enabled && c.id == record.id) {
            return done(false);
        }
        list.retain(|c| c.enabled);
        list.push(record);
        done(true)
    }

    fn activate(
        &self,
        user_id: &str,
        expected_secret: &[u8],
        step: u64,
        drift: i64,
        backup_codes: Option<&[BackupCodeHash]>,
        max_enabled: u32,
    ) -> impl Future<Output = Result<bool, Infallible>> + Send {
        let mut inner = self.lock();
        let Some(list) = inner.credentials.get_mut(user_id) else {
            return done(false);
        };
        let Some(pending) = list
            .iter()
            .position(|c| !c.enabled && ct_eq(&c.encrypted_secret, expected_secret))
        else {
            return done(false);
        };
        let enabled = list.iter().filter(|c| c.enabled).count();
        let replaced = match (&backup_codes, &list[pending].replaces) {
            (Some(_), _) => None,
            (None, Some(old)) => list.iter().position(|c| c.enabled && &c.id == old),
            (None, None) => None,
        };
        let after = enabled - usize::from(replaced.is_some()) + 1;
        let allowed = match backup_codes {
            Some(_) => enabled == 0,
            None => enabled > 0,
        };
        if !allowed || after > max_enabled as usize {
            return done(false);
        }
        let record = &mut list[pending];
        record.enabled = true;
        record.last_step = Some(step);
        record.drift = drift;
        record.replaces = None;
        if let Some(i) = replaced {
            list.remove(i);
        }
        if let Some(codes) = backup_codes {
            inner
                .backup_codes
                .insert(user_id.to_owned(), codes.to_vec());
        }
        done(true)
    }

    fn advance_step(
        &self,
        user_id: &str,
        id: &str,
        expected_secret: &[u8],
        step: u64,
        drift: i64,
        now: u64,
    ) -> impl Future<Output = Result<bool, Infallible>> + Send {
        let mut inner = self.lock();
        let Some(record) = inner.credential_mut(user_id, id) else {
            return done(false);
        };
        // The blob is ciphertext, not a secret: a plain comparison is enough (and several times
        // cheaper than a constant-time one over 60 bytes on this hot path).
        if !record.enabled
            || record.encrypted_secret != expected_secret
            || record.last_step.is_some_and(|last| last >= step)
        {
            return done(false);
        }
        record.last_step = Some(step);
        record.drift = drift;
        record.last_used_at = Some(now);
        done(true)
    }

    fn rewrite_secret(
        &self,
        user_id: &str,
        id: &str,
        old_secret: &[u8],
        new_secret: &[u8],
    ) -> impl Future<Output = Result<bool, Infallible>> + Send {
        let mut inner = self.lock();
        let Some(record) = inner.credential_mut(user_id, id) else {
            return done(false);
        };
        if !ct_eq(&record.encrypted_secret, old_secret) {
            return done(false);
        }
        record.encrypted_secret = new_secret.to_vec();
        done(true)
    }

    fn rename_credential(
        &self,
        user_id: &str,
        id: &str,
        name: &str,
    ) -> impl Future<Output = Result<bool, Infallible>> + Send {
        let mut inner = self.lock();
        let Some(record) = inner.credential_mut(user_id, id) else {
            return done(false);
        };
        name.clone_into(&mut record.name);
        done(true)
    }

    fn remove_credential(
        &self,
        user_id: &str,
        id: &str,
    ) -> impl Future<Output = Result<RemoveCredential, Infallible>> + Send {
        let mut inner = self.lock();
        let enabled = inner.enabled_count(user_id);
        let Some(list) = inner.credentials.get_mut(user_id) else {
            return done(RemoveCredential::NotFound);
        };
        let Some(i) = list.iter().position(|c| c.id == id) else {
            return done(RemoveCredential::NotFound);
        };
        if list[i].enabled && enabled <= 1 {
            return done(RemoveCredential::LastEnabled);
        }
        list.remove(i);
        inner.drop_if_empty(user_id);
        done(RemoveCredential::Removed)
    }

    fn delete_credentials(
        &self,
        user_id: &str,
    ) -> impl Future<Output = Result<bool, Infallible>> + Send {
        let mut inner = self.lock();
        inner.backup_codes.remove(user_id);
        inner.recovery.remove(user_id);
        inner.changes.remove(user_id);
        done(inner.credentials.remove(user_id).is_some())
    }

    fn consume_backup_code(
        &self,
        user_id: &str,
        hash: &BackupCodeHash,
    ) -> impl Future<Output = Result<Option<u32>, Infallible>> + Send {
        let mut inner = self.lock();
        let Some(codes) = inner.backup_codes.get_mut(user_id) else {
            return done(None);
        };
        // Look at every code, without an early exit, so timing says nothing about which matched.
        let mut found = None;
        for (i, stored) in codes.iter().enumerate() {
            if bool::from(stored.ct_eq(hash)) && found.is_none() {
                found = Some(i);
            }
        }
        done(found.map(|i| {
            codes.swap_remove(i);
            u32::try_from(codes.len()).unwrap_or(u32::MAX)
        }))
    }

    fn replace_backup_codes(
        &self,
        user_id: &str,
        hashes: &[BackupCodeHash],
    ) -> impl Future<Output = Result<bool, Infallible>> + Send {
        let mut inner = self.lock();
        if !inner.has_enabled(user_id) {
            return done(false);
        }
        inner
            .backup_codes
            .insert(user_id.to_owned(), hashes.to_vec());
        done(true)
    }

    fn backup_codes_remaining(
        &self,
        user_id: &str,
    ) -> impl Future<Output = Result<u32, Infallible>> + Send {
        let inner = self.lock();
        let n = inner.backup_codes.get(user_id).map_or(0, Vec::len);
        done(u32::try_from(n).unwrap_or(u32::MAX))
    }

    fn put_recovery(
        &self,
        user_id: &str,
        record: &RecoveryRecord,
    ) -> impl Future<Output = Result<(), Infallible>> + Send {
        self.lock()
            .recovery
            .insert(user_id.to_owned(), record.clone());
        done(())
    }

    fn get_recovery(
        &self,
        user_id: &str,
    ) -> impl Future<Output = Result<Option<RecoveryRecord>, Infallible>> + Send {
        done(self.lock().recovery.get(user_id).cloned())
    }

    fn approve_recovery(
        &self,
        user_id: &str,
    ) -> impl Future<Output = Result<bool, Infallible>> + Send {
        let mut inner = self.lock();
        done(match inner.recovery.get_mut(user_id) {
            Some(record) => {
                record.approved = true;
                true
            }
            None => false,
        })
    }

    fn cancel_recovery(
        &self,
        user_id: &str,
        include_approved: bool,
    ) -> impl Future<Output = Result<bool, Infallible>> + Send {
        let mut inner = self.lock();
        let cancel = inner
            .recovery
            .get(user_id)
            .is_some_and(|r| include_approved || !r.approved);
        if cancel {
            inner.recovery.remove(user_id);
        }
        done(cancel)
    }

    fn cancel_recovery_with_token(
        &self,
        user_id: &str,
        cancel_hash: &TokenHash,
    ) -> impl Future<Output = Result<bool, Infallible>> + Send {
        let mut inner = self.lock();
        let matches = inner
            .recovery
            .get(user_id)
            .is_some_and(|r| bool::from(r.cancel_hash.ct_eq(cancel_hash)));
        if matches {
            inner.recovery.remove(user_id);
        }
        done(matches)
    }

    fn complete_recovery(
        &self,
        user_id: &str,
        now: u64,
        approval_required: bool,
    ) -> impl Future<Output = Result<bool, Infallible>> + Send {
        let mut inner = self.lock();
        let due = inner.recovery.get(user_id).is_some_and(|r| {
            r.approved || (!approval_required && !r.needs_approval && r.not_before <= now)
        });
        if !due {
            return done(false);
        }
        inner.recovery.remove(user_id);
        inner.credentials.remove(user_id);
        inner.backup_codes.remove(user_id);
        inner.changes.remove(user_id);
        done(true)
    }

    fn put_change(
        &self,
        user_id: &str,
        record: &ScheduledChangeRecord,
    ) -> impl Future<Output = Result<bool, Infallible>> + Send {
        let mut inner = self.lock();
        let list = inner.changes.entry(user_id.to_owned()).or_default();
        if list.iter().any(|c| c.id == record.id) {
            return done(false);
        }
        list.push(record.clone());
        list.sort_by(|a, b| (a.requested_at, &a.id).cmp(&(b.requested_at, &b.id)));
        done(true)
    }

    fn list_changes(
        &self,
        user_id: &str,
    ) -> impl Future<Output = Result<Vec<ScheduledChangeRecord>, Infallible>> + Send {
        done(
            self.lock()
                .changes
                .get(user_id)
                .cloned()
                .unwrap_or_default(),
        )
    }

    fn take_change(
        &self,
        user_id: &str,
        id: &str,
        due_by: u64,
    ) -> impl Future<Output = Result<Option<ScheduledChangeRecord>, Infallible>> + Send {
        let mut inner = self.lock();
        let Some(list) = inner.changes.get_mut(user_id) else {
            return done(None);
        };
        let Some(i) = list
            .iter()
            .position(|c| c.id == id && c.not_before <= due_by)
        else {
            return done(None);
        };
        let taken = list.remove(i);
        if list.is_empty() {
            inner.changes.remove(user_id);
        }
        done(Some(taken))
    }

    fn delete_changes(
        &self,
        user_id: &str,
    ) -> impl Future<Output = Result<u64, Infallible>> + Send {
        let n = self.lock().changes.remove(user_id).map_or(0, |l| l.len());
        done(u64::try_from(n).unwrap_or(u64::MAX))
    }

    fn put_notice(
        &self,
        hash: &TokenHash,
        user_id: &str,
        expires_at: u64,
    ) -> impl Future<Output = Result<(), Infallible>> + Send {
        self.lock()
            .notices
            .insert(*hash, (user_id.to_owned(), expires_at));
        done(())
    }

    fn take_notice(
        &self,
        user_id: &str,
        hash: &TokenHash,
        now: u64,
    ) -> impl Future<Output = Result<bool, Infallible>> + Send {
        let mut inner = self.lock();
        let live = inner
            .notices
            .get(hash)
            .is_some_and(|(user, expires_at)| user == user_id && now < *expires_at);
        if live {
            inner.notices.remove(hash);
        }
        done(live)
    }

    fn put_device(
        &self,
        hash: &TokenHash,
        record: &DeviceRecord,
    ) -> impl Future<Output = Result<(), Infallible>> + Send {
        self.lock().devices.insert(*hash, record.clone());
        done(())
    }

    fn use_device(
        &self,
        hash: &TokenHash,
        now: u64,
    ) -> impl Future<Output = Result<Option<DeviceRecord>, Infallible>> + Send {
        let mut inner = self.lock();
        let live = inner
            .devices
            .get_mut(hash)
            .filter(|d| now < d.expires_at)
            .map(|d| {
                d.last_used_at = now;
                d.clone()
            });
        done(live)
    }

    fn list_devices(
        &self,
        user_id: &str,
        now: u64,
    ) -> impl Future<Output = Result<Vec<(TokenHash, DeviceRecord)>, Infallible>> + Send {
        let inner = self.lock();
        let mut list: Vec<(TokenHash, DeviceRecord)> = inner
            .devices
            .iter()
            .filter(|(_, d)| d.user_id == user_id && now < d.expires_at)
            .map(|(h, d)| (*h, d.clone()))
            .collect();
        list.sort_by_key(|(hash, d)| (d.created_at, *hash));
        done(list)
    }

    fn delete_device(
        &self,
        hash: &TokenHash,
    ) -> impl Future<Output = Result<bool, Infallible>> + Send {
        done(self.lock().devices.remove(hash).is_some())
    }

    fn delete_devices(
        &self,
        user_id: &str,
    ) -> impl Future<Output = Result<u64, Infallible>> + Send {
        let mut inner = self.lock();
        let before = inner.devices.len();
        inner.devices.retain(|_, d| d.user_id != user_id);
        done(u64::try_from(before - inner.devices.len()).unwrap_or(u64::MAX))
    }

    fn delete_user(
        &self,
        user_id: &str,
    ) -> impl Future<Output = Result<DeletedCredentials, Infallible>> + Send {
        let mut inner = self.lock();
        inner.backup_codes.remove(user_id);
        inner.recovery.remove(user_id);
        inner.changes.remove(user_id);
        inner.notices.retain(|_, (user, _)| user != user_id);
        let credential = inner.credentials.remove(user_id).is_some();
        let mut devices = Vec::new();
        inner.devices.retain(|hash, d| {
            let theirs = d.user_id == user_id;
            if theirs {
                devices.push(*hash);
            }
            !theirs
        });
        done(DeletedCredentials {
            credential,
            devices,
        })
    }
}
