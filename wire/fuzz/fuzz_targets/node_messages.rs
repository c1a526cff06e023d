//! What a node sends, decoded as the coordinator decodes it: a registration (its proof of
//! possession), a report header (result, failure code, environment differences, what its
//! binaries embed) and a signed rebuild link. Must never panic, whatever the bytes.
#![no_main]

use debcover_proto::v1 as pb;
use libfuzzer_sys::fuzz_target;
use prost::Message;

const KEY: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAABAgMEBQYHCAkKCwwNDg8QERITFBUWFxgZGhscHR4f test";

fuzz_target!(|data: &[u8]| {
    if let Ok(r) = pb::RegisterRequest::decode(data) {
        let _ = debcover_core::attestation::registration::check(
            "00",
            &r.public_key,
            r.registration_time,
            &r.registration_signature,
            1_700_000_000,
        );
    }
    if let Ok(h) = pb::ReportHeader::decode(data) {
        let _ = debcover_wire::rebuild::result_of(&h);
        let _ = debcover_wire::convert::embedded_binaries(&h);
    }
    let artifacts = [debcover_core::rebuild::Artifact { name: "a.deb".into(), size: 1, sha256: "0".repeat(64) }];
    let _ = debcover_core::rebuild::attest::check(data, KEY, 1, 1, &artifacts);
});
