//! Duplicates within the file: a later row holding the same key or unique value as an
//! earlier one fails with "duplicate in file, first seen on row N" — decided the same way by
//! the dry run and by the job's prepare step.

use super::plan::{Plan, RowIssue};
use kehu_core::meta::FieldDef;
use std::collections::HashMap;
use std::sync::Arc;

/// Values seen so far in the key and unique columns, to report a later row holding the same
/// value ("duplicate in file, first seen on row N"). Values are kept as 128-bit hashes.
#[derive(Default)]
pub(crate) struct DupIndex {
    seen: HashMap<(usize, u128), u64>,
}

fn hash128(s: &str) -> u128 {
    use std::hash::{Hash, Hasher};
    let mut a = std::collections::hash_map::DefaultHasher::new();
    (0u8, s).hash(&mut a);
    let mut b = std::collections::hash_map::DefaultHasher::new();
    (1u8, s).hash(&mut b);
    ((a.finish() as u128) << 64) | b.finish() as u128
}

impl DupIndex {
    /// The duplicate issue of this row, if one of its key/unique values appeared before.
    pub(crate) fn check(
        &mut self,
        cols: &[(usize, Arc<FieldDef>)],
        headers: &[String],
        row: u64,
        cells: &[String],
    ) -> Option<RowIssue> {
        let mut out = None;
        for (i, f) in cols {
            let Some(v) = cells.get(*i).and_then(|c| Plan::unique_value(f, c)) else { continue };
            match self.seen.entry((*i, hash128(&v))) {
                std::collections::hash_map::Entry::Occupied(e) => {
                    if out.is_none() {
                        out = Some(RowIssue {
                            row,
                            column: headers.get(*i).cloned().unwrap_or_default(),
                            code: "import.duplicate_in_file".into(),
                            first_row: Some(*e.get()),
                        });
                    }
                }
                std::collections::hash_map::Entry::Vacant(e) => {
                    e.insert(row);
                }
            }
        }
        out
    }
}
