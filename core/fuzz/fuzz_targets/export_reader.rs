//! The offline verifier's reader (`debcover verify DIR`) over hostile exports: the input is
//! split into a manifest and the files it may name (layout, links, keys), and checked under
//! both kinds of trust root. Must never panic, whatever the bytes.
#![no_main]

use debcover_core::attestation::verify::{Trust, verify};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Files are separated by NUL: manifest, then the contents every other name reads.
    let mut parts = data.split(|b| *b == 0);
    let manifest = parts.next().unwrap_or_default();
    let rest: Vec<Vec<u8>> = parts.map(<[u8]>::to_vec).collect();
    let read = |name: &str| -> Result<Vec<u8>, String> {
        let i = name.bytes().map(usize::from).sum::<usize>();
        if rest.is_empty() { Err(format!("{name}: missing")) } else { Ok(rest[i % rest.len()].clone()) }
    };
    let id = String::from_utf8_lossy(rest.first().map(Vec::as_slice).unwrap_or_default()).into_owned();
    for trust in [Trust::Key([7; 32]), Trust::KeyId(id)] {
        let _ = verify(manifest, &trust, Some(2), 1_700_000_000, &read);
        let _ = verify(manifest, &trust, None, 0, &read);
    }
});
