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

use super::StoreError;

/// One posting row: `(pkgver id, smallest build id, encoded build ids)`.
pub(crate) type Row = (i64, i64, Vec<u8>);

/// The build ids of one batch, gathered per interning key (keys by their position in the
/// batch's key list, see [`super::batch::Plan`]). Builds are usually added in ascending id
/// order, so the lists come out sorted without sorting.
pub(crate) struct Lists {
    lists: Vec<Vec<i64>>,
}

impl Lists {
    /// Empty lists for `keys` keys.
    pub(crate) fn new(keys: usize) -> Self {
        Lists { lists: vec![Vec::new(); keys] }
    }

    /// Record that build `build` had key number `key` installed.
    pub(crate) fn add(&mut self, key: usize, build: i64) -> Result<(), StoreError> {
        self.lists
            .get_mut(key)
            .ok_or_else(|| StoreError::Corrupt(format!("posting key {key} out of range")))?
            .push(build);
        Ok(())
    }

    /// One row per pkgver, ordered by pkgver id; `pkgver[k]` is the interned id of key `k`.
    pub(crate) fn rows(self, pkgver: &[i64]) -> Result<Vec<Row>, StoreError> {
        if pkgver.len() != self.lists.len() {
            return Err(StoreError::Corrupt(format!("{} ids for {} posting keys", pkgver.len(), self.lists.len())));
        }
        let mut by_pkg: Vec<(i64, Vec<i64>)> =
            pkgver.iter().copied().zip(self.lists).filter(|(_, builds)| !builds.is_empty()).collect();
        by_pkg.sort_unstable_by_key(|(pv, _)| *pv);
        // Two keys with one id cannot happen (ids are unique per key), but merge them if they do.
        let mut merged: Vec<(i64, Vec<i64>)> = Vec::with_capacity(by_pkg.len());
        for (pv, builds) in by_pkg {
            match merged.last_mut() {
                Some((last, list)) if *last == pv => list.extend(builds),
                _ => merged.push((pv, builds)),
            }
        }
        Ok(merged
            .into_iter()
            .map(|(pv, mut builds)| {
                if !builds.is_sorted() {
                    builds.sort_unstable();
                }
                builds.dedup();
                (pv, builds[0], encode(&builds))
            })
            .collect())
    }
}

/// Group `(pkgver id, build id)` pairs into one row per pkgver.
#[cfg(test)]
pub(crate) fn rows(pairs: &[(i64, i64)]) -> Vec<Row> {
    let mut pvs: Vec<i64> = pairs.iter().map(|p| p.0).collect();
    pvs.sort_unstable();
    pvs.dedup();
    let mut lists = Lists::new(pvs.len());
    for (pv, build) in pairs {
        if let Ok(k) = pvs.binary_search(pv) {
            let _ = lists.add(k, *build);
        }
    }
    lists.rows(&pvs).unwrap_or_default()
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
