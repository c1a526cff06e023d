//! Paragraph splitting + SourcesEntry::parse on arbitrary bytes.
#![no_main]

use debcover_formats::paragraph::Paragraphs;
use debcover_formats::SourcesEntry;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for p in Paragraphs::new(data) {
        match p {
            Ok(p) => {
                let _ = SourcesEntry::parse(&p);
            }
            Err(_) => break,
        }
    }
});
