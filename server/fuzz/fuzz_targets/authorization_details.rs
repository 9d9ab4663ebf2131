//! Any text as the `authorization_details` form parameter of a backchannel request, and
//! (when it is a JSON object) as all of its parameters.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = countersign_server::fuzzing::authorization_details(&String::from_utf8_lossy(data));
});
