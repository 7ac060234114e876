//! [`CredentialStore`] contracts of device tokens one call at a time: expiry at the caller's
//! `now`, replacement, deletion of one token or of one user's, and independence from the
//! credential.

use super::{BIGINT_MAX, device_record, enabled_user, random, unique};
use crate::store::{CredentialStore, DeviceRecord, TokenHash};

/// Runs every check of this file.
pub(super) async fn checks<S: CredentialStore>(store: &S, base: u64) {
    devices(store, base).await;
}

async fn devices<S: CredentialStore>(store: &S, base: u64) {
    let hash: TokenHash = random::<32>();
    assert_eq!(call!(store.use_device(&hash, base)), None, "unknown device");
    assert!(
        !call!(store.delete_device(&hash)),
        "delete_device of an unknown token must return false"
    );

    let user = unique("device");
    let expires_at = base + 3600;
    let record = DeviceRecord {
        user_id: user.clone(),
        created_at: base - 10,
        expires_at,
        trusted_until: Some(base + 1800),
        label: "Firefox on Linux \u{1F98A} 'quoted'".to_owned(),
        last_used_at: base - 10,
    };
    call!(store.put_device(&hash, &record));
    for now in [base - 100, base, expires_at - 1, base] {
        assert_eq!(
            call!(store.use_device(&hash, now)),
            Some(DeviceRecord {
                last_used_at: now,
                ..record.clone()
            }),
            "use_device before expiry must return the record as put with last_used_at = now, and \
             not consume it"
        );
    }
    assert_eq!(
        call!(store.use_device(&hash, expires_at)),
        None,
        "get_device at expires_at must return None (now >= expires_at is expired)"
    );
    assert_eq!(call!(store.use_device(&hash, expires_at + 1)), None);
    let mut near = hash;
    near[31] ^= 1;
    assert_eq!(
        call!(store.use_device(&near, base)),
        None,
        "device hashes must be compared as whole binary values"
    );
    assert!(!call!(store.delete_device(&near)));

    let renewed = DeviceRecord {
        created_at: base,
        expires_at: BIGINT_MAX,
        trusted_until: None,
        label: String::new(),
        ..record.clone()
    };
    call!(store.put_device(&hash, &renewed));
    assert_eq!(
        call!(store.use_device(&hash, expires_at)),
        Some(DeviceRecord {
            last_used_at: expires_at,
            ..renewed
        }),
        "put_device must replace the record under the hash (expiry up to i64::MAX)"
    );
    assert!(call!(store.delete_device(&hash)), "delete_device");
    assert_eq!(
        call!(store.use_device(&hash, base)),
        None,
        "use_device after delete_device returned must return None"
    );
    assert!(
        !call!(store.delete_device(&hash)),
        "a second delete_device must return false"
    );

    // delete_devices removes one user's tokens, all of them, and nobody else's.
    let other = unique("device-other");
    let mine: Vec<TokenHash> = (0..3).map(|_| random::<32>()).collect();
    let theirs: Vec<TokenHash> = (0..2).map(|_| random::<32>()).collect();
    for (i, h) in mine.iter().enumerate() {
        let record = DeviceRecord {
            created_at: base - 100 + i as u64,
            ..device_record(&user, expires_at)
        };
        call!(store.put_device(h, &record));
    }
    let expired = random::<32>();
    call!(store.put_device(&expired, &device_record(&user, base)));
    let listed = call!(store.list_devices(&user, base));
    assert_eq!(
        listed.iter().map(|(h, _)| *h).collect::<Vec<_>>(),
        mine,
        "list_devices must return the user's live tokens (not expired ones, not another \
         user's), oldest first"
    );
    assert_eq!(
        listed[1].1.created_at,
        base - 99,
        "list_devices must return the records as put"
    );
    assert!(call!(store.delete_device(&expired)));
    for h in &theirs {
        call!(store.put_device(h, &device_record(&other, expires_at)));
    }
    assert_eq!(
        call!(store.delete_devices(&user)),
        3,
        "delete_devices must return how many tokens the user had"
    );
    for h in &mine {
        assert_eq!(call!(store.use_device(h, base)), None, "delete_devices");
    }
    for h in &theirs {
        assert_eq!(
            call!(store.use_device(h, base)),
            Some(DeviceRecord {
                last_used_at: base,
                ..device_record(&other, expires_at)
            }),
            "delete_devices must not touch another user's tokens"
        );
    }
    assert_eq!(call!(store.delete_devices(&user)), 0, "nothing left");
    assert!(
        call!(store.list_devices(&user, base)).is_empty(),
        "list_devices after delete_devices"
    );
    assert_eq!(call!(store.delete_devices(&unique("device-nobody"))), 0);

    // Devices outlive the credential: the service decides when they go.
    enabled_user(store, &other, base, base / 30, &[]).await;
    assert!(call!(store.delete_credentials(&other)));
    assert!(
        call!(store.use_device(&theirs[0], base)).is_some(),
        "delete_credential must leave device tokens to the caller"
    );
    assert_eq!(call!(store.delete_devices(&other)), 2);
}
