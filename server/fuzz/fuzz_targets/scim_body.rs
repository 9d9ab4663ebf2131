//! Any text as a SCIM request body: a User or Group to create, and a PATCH request.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = countersign_server::fuzzing::scim_body(&String::from_utf8_lossy(data));
});
