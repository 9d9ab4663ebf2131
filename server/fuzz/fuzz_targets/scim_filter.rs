//! Any text as a SCIM `filter`: parsed, then matched against a User.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = countersign_server::fuzzing::scim_filter(&String::from_utf8_lossy(data));
});
