//! Any text as a SCIM PATCH `path` (and, after a newline, the operation's JSON value),
//! applied as add, replace and remove to a User and a Group.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = countersign_server::fuzzing::scim_patch_path(&String::from_utf8_lossy(data));
});
