//! Any bytes as a status list token, and as a compressed list body (reaching the
//! decompressor directly, past the signature check).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = countersign_verifier::fuzzing::status_list(&String::from_utf8_lossy(data));
    if let Some((&bits, rest)) = data.split_first() {
        let _ = countersign_verifier::fuzzing::status_bits(bits % 9, rest, u64::from(bits) * 97);
    }
});
