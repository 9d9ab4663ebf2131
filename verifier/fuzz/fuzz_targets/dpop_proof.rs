//! Any bytes as a DPoP proof.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = countersign_verifier::fuzzing::dpop_proof(&String::from_utf8_lossy(data));
});
