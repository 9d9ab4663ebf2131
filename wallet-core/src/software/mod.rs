//! Software implementations of the platform traits, for desktop wallets, the CLI wallet
//! and tests. Phones implement [`crate::platform`] with their secure hardware instead.

mod keystore;
mod passkeys;
mod storage;

pub use keystore::SoftwareKeystore;
pub use passkeys::{AuthenticatorFaults, SoftwarePasskeys};
pub use storage::{FileStorage, MemoryStorage, write_private};

use std::sync::Arc;

use crate::platform::SecureStorage;
use crate::wallet::Platform;

/// A whole software platform over one storage.
pub fn platform(storage: Arc<dyn SecureStorage>) -> Platform {
    Platform {
        keystore: Arc::new(SoftwareKeystore::new(storage.clone())),
        passkeys: Arc::new(SoftwarePasskeys::new(storage.clone())),
        storage,
    }
}
