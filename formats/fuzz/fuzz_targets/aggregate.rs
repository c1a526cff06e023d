//! Aggregated buildinfo index: detection, splitting, per-entry parsing and identity.
#![no_main]

use debcover_formats::aggregate;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = aggregate::looks_like_index(data);
    for entry in aggregate::paragraphs(data) {
        match entry {
            Ok(e) => {
                let _ = aggregate::entry_id(&e);
                if let Ok(b) = aggregate::parse_entry(&e) {
                    let _ = aggregate::render_index([&b]);
                }
            }
            Err(_) => break,
        }
    }
});
