//! Wallets for end-to-end tests: real `wallet-core` over the software platform (software
//! keystore and passkeys on in-memory storage), enrolled through the real server. The
//! wallet is blocking (it is what a phone's background thread runs), so calls go through
//! `spawn_blocking`.

use std::sync::Arc;

use countersign_server::approvals::enrollment;
use countersign_wallet_core::software::{
    self, AuthenticatorFaults, MemoryStorage, SoftwarePasskeys,
};
use countersign_wallet_core::{EnrollOptions, Platform, Wallet, WalletError};

use crate::TestServer;

/// A wallet and the storage behind it (tests copy it to make a clone of the phone).
pub struct TestWallet {
    pub wallet: Arc<Wallet>,
    pub storage: Arc<MemoryStorage>,
}

pub fn desktop() -> EnrollOptions {
    EnrollOptions {
        platform: "desktop".into(),
        name: Some("test wallet".into()),
        push_channel: "none".into(),
        push_token: None,
    }
}

impl TestWallet {
    /// A software wallet over `storage`, optionally with a misbehaving authenticator.
    pub fn over(storage: Arc<MemoryStorage>, faults: Option<AuthenticatorFaults>) -> Self {
        let mut platform: Platform = software::platform(storage.clone());
        if let Some(faults) = faults {
            platform.passkeys =
                Arc::new(SoftwarePasskeys::new(storage.clone()).with_faults(faults));
        }
        Self {
            wallet: Arc::new(Wallet::new(platform)),
            storage,
        }
    }

    /// Another wallet with this one's stored state as it is now (a cloned phone).
    pub fn snapshot(&self, faults: Option<AuthenticatorFaults>) -> Self {
        Self::over(
            Arc::new(MemoryStorage::from_snapshot(self.storage.snapshot())),
            faults,
        )
    }

    /// Runs a blocking wallet operation off the async runtime.
    pub async fn run<T: Send + 'static>(
        &self,
        op: impl FnOnce(&Wallet) -> Result<T, WalletError> + Send + 'static,
    ) -> Result<T, WalletError> {
        let wallet = self.wallet.clone();
        tokio::task::spawn_blocking(move || op(&wallet))
            .await
            .expect("wallet task")
    }
}

impl TestServer {
    /// A fresh invitation URI for `subject`.
    pub async fn invitation(&self, subject: &str) -> String {
        enrollment::invite(&self.state().approvals, subject, "test")
            .await
            .expect("invitation")
            .uri
    }

    /// A software wallet enrolled for `subject`.
    pub async fn wallet(&self, subject: &str) -> TestWallet {
        self.wallet_with(subject, desktop()).await
    }

    /// A software wallet enrolled for `subject` with these platform and push details.
    pub async fn wallet_with(&self, subject: &str, options: EnrollOptions) -> TestWallet {
        let uri = self.invitation(subject).await;
        let wallet = TestWallet::over(Arc::new(MemoryStorage::default()), None);
        wallet
            .run(move |w| w.enroll(&uri, &options))
            .await
            .expect("enrollment");
        wallet
    }
}

/// Asserts a wallet operation was refused by the server with `status` and a reason that
/// mentions `reason`.
#[track_caller]
pub fn assert_refused<T: std::fmt::Debug>(
    result: Result<T, WalletError>,
    status: u16,
    reason: &str,
) {
    match result {
        Err(WalletError::Refused {
            status: got,
            detail,
        }) => {
            assert_eq!(got, status, "{detail}");
            assert!(
                detail.contains(reason),
                "{detail:?} should mention {reason:?}"
            );
        }
        other => panic!("expected a refusal ({status}, {reason}), got {other:?}"),
    }
}
