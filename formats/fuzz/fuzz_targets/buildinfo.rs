//! Buildinfo::parse on arbitrary bytes; whatever parses must survive render -> parse unchanged.
#![no_main]

use debcover_formats::Buildinfo;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(b) = Buildinfo::parse(data) {
        let _ = b.host_architecture();
        // The renderer's contract: parse(render(b)) == b for every value parse returns
        // (the signature is not rendered).
        let text = b.render();
        let again = match Buildinfo::parse(text.as_bytes()) {
            Ok(again) => again,
            Err(e) => panic!("rendered buildinfo does not parse: {e}\n{text}"),
        };
        assert_eq!(again, Buildinfo { signature: None, ..b });
        assert_eq!(again.render(), text);
    }
});
