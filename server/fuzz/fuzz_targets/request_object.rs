//! Any text as a signed request object (CIBA Core §7.1.1): its header and claims as the
//! backchannel endpoint reads them, the signature aside.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = countersign_server::fuzzing::request_object(&String::from_utf8_lossy(data));
});
