//! Posting lists: the builds that had one interned package installed.
//!
//! A suite holds ~9 million Installed-Build-Depends entries. Stored as one row per entry, the
//! clustered index costs ~1 µs of B-tree work per row on every ingest, which caps ingestion far
//! below a suite's size per minute. Instead, each ingestion batch writes **one row per distinct
//! package it touches**, holding the batch's build ids for that package, sorted and
//! delta-encoded as LEB128 varints. Rows stay clustered by package, so "who was built with X"
//! is still one range scan, now decoding a few blobs instead of reading thousands of rows.
//!
//! The codec is backend-independent; both backends store the blob as-is.

use std::collections::BTreeMap;

use super::StoreError;

/// One posting row: `(pkgver id, smallest build id, encoded build ids)`.
pub(crate) type Row = (i64, i64, Vec<u8>);

/// Group `(pkgver id, build id)` pairs into one row per pkgver.
pub(crate) fn rows(pairs: &[(i64, i64)]) -> Vec<Row> {
    let mut by_pkg: BTreeMap<i64, Vec<i64>> = BTreeMap::new();
    for (pv, build) in pairs {
        by_pkg.entry(*pv).or_default().push(*build);
    }
    by_pkg
        .into_iter()
        .map(|(pv, mut builds)| {
            builds.sort_unstable();
            builds.dedup();
            (pv, builds[0], encode(&builds))
        })
        .collect()
}

/// Encode ascending, distinct, positive ids.
pub(crate) fn encode(ids: &[i64]) -> Vec<u8> {
    let mut out = Vec::with_capacity(ids.len() * 2);
    let mut prev = 0i64;
    for id in ids {
        let mut delta = (id - prev) as u64;
        prev = *id;
        loop {
            let byte = (delta & 0x7f) as u8;
            delta >>= 7;
            if delta == 0 {
                out.push(byte);
                break;
            }
            out.push(byte | 0x80);
        }
    }
    out
}

/// Decode a blob written by [`encode`].
pub(crate) fn decode(bytes: &[u8]) -> Result<Vec<i64>, StoreError> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut prev = 0i64;
    let mut value = 0u64;
    let mut shift = 0u32;
    for b in bytes {
        if shift > 63 {
            return Err(StoreError::Corrupt("posting list varint too long".into()));
        }
        value |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            prev = prev
                .checked_add(i64::try_from(value).map_err(|_| StoreError::Corrupt("posting delta out of range".into()))?)
                .ok_or_else(|| StoreError::Corrupt("posting id overflow".into()))?;
            out.push(prev);
            value = 0;
            shift = 0;
        } else {
            shift += 7;
        }
    }
    if shift != 0 {
        return Err(StoreError::Corrupt("posting list ends inside a varint".into()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn groups_by_package() {
        let r = rows(&[(7, 3), (5, 3), (7, 1), (7, 200), (5, 4)]);
        assert_eq!(r.len(), 2);
        assert_eq!((r[0].0, r[0].1, decode(&r[0].2).unwrap()), (5, 3, vec![3, 4]));
        assert_eq!((r[1].0, r[1].1, decode(&r[1].2).unwrap()), (7, 1, vec![1, 3, 200]));
    }

    #[test]
    fn truncated_blob_is_an_error() {
        assert!(decode(&[0x80]).is_err());
        assert!(decode(&[0xff; 11]).is_err());
    }

    proptest! {
        #[test]
        fn round_trip(mut ids in proptest::collection::vec(1i64..i64::MAX / 4, 0..300)) {
            ids.sort_unstable();
            ids.dedup();
            prop_assert_eq!(decode(&encode(&ids)).unwrap(), ids);
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = decode(&bytes);
        }
    }
}
