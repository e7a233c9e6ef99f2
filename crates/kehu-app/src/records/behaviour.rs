//! Object behaviours: what a module adds to the write core for the records of one object.
//!
//! The write core (`records/write.rs`, and every path built on it: create, update, delete,
//! restore, merge — the survivor and every record re-pointed to it —, purge and the links it
//! clears, bulk, import, undo, revert) calls the behaviours of the record's object, in the
//! order of `modules::MODULES`:
//!
//! 1. `derive` on the input before it is parsed (pure: an import's dry run derives the same);
//! 2. `before`, inside the transaction, on the parsed values about to be written (validate,
//!    derive more, refuse with an error — nothing is written);
//! 3. `after`, inside the same transaction once the row, audit entry, field history, outbox
//!    event and search document are written: side effects that commit with the change (an
//!    error rolls the whole change back).
//!
//! Nothing object-specific stays in the engine: the contact's name composition and the
//! activity's notifications are behaviours of their modules.

use crate::work::BoxFut;
use crate::{App, Result};
use kehu_core::meta::{FieldDef, ObjectDef};
use kehu_core::perm::Actor;
use kehu_core::value::Value;
use kehu_core::Uuid;
use kehu_db::Tx;
use serde_json::{Map, Value as Json};
use std::borrow::Cow;
use std::sync::Arc;

/// Which change a behaviour sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    Create,
    Update,
    Delete,
    Restore,
    Purge,
}

/// A change about to be written (`before`): the record's values before (None on create) and
/// the values being written (changed ones on update; all on create), which `before` may edit.
pub struct Pending<'a> {
    pub actor: &'a Actor,
    pub obj: &'a ObjectDef,
    pub kind: ChangeKind,
    pub old: Option<&'a [(Arc<FieldDef>, Value)]>,
    pub values: &'a mut Vec<(Arc<FieldDef>, Value)>,
}

/// A change as written (`after`): the record's values before (None on create) and after.
pub struct Written<'a> {
    pub actor: &'a Actor,
    pub obj: &'a ObjectDef,
    pub id: Uuid,
    pub kind: ChangeKind,
    pub old: Option<&'a [(Arc<FieldDef>, Value)]>,
    pub new: &'a [(Arc<FieldDef>, Value)],
}

/// A behaviour of one object's records. Every method has a default that does nothing.
pub trait Behaviour: Send + Sync + 'static {
    /// Derive input members before parsing (`creating`: a new record). The input is copied
    /// only by a behaviour that changes it (`input.to_mut()`).
    fn derive(&self, _obj: &ObjectDef, _input: &mut Cow<'_, Map<String, Json>>, _creating: bool) {}
    /// Validate or adjust the values about to be written; an error refuses the change.
    fn before(&self, _p: &mut Pending<'_>) -> Result<()> {
        Ok(())
    }
    /// Side effects in the change's transaction.
    fn after<'a>(&'a self, _app: &'a App, _tx: &'a mut Tx, _w: &'a Written<'a>) -> BoxFut<'a, Result<()>> {
        Box::pin(async { Ok(()) })
    }
}

/// `derive` of every behaviour of `obj`; borrows the input when none changes it.
pub(crate) fn derive<'a>(obj: &ObjectDef, input: &'a Map<String, Json>, creating: bool) -> Cow<'a, Map<String, Json>> {
    let mut c = Cow::Borrowed(input);
    for b in crate::modules::behaviours(&obj.api_name).iter() {
        b.derive(obj, &mut c, creating);
    }
    c
}

/// `derive` of an input the caller owns (an import row): never copied.
pub(crate) fn derive_owned(obj: &ObjectDef, input: Map<String, Json>, creating: bool) -> Map<String, Json> {
    let mut c: Cow<'_, Map<String, Json>> = Cow::Owned(input);
    for b in crate::modules::behaviours(&obj.api_name).iter() {
        b.derive(obj, &mut c, creating);
    }
    c.into_owned()
}

/// `before` of every behaviour of the pending change's object.
pub(crate) fn before(p: &mut Pending<'_>) -> Result<()> {
    for b in crate::modules::behaviours(&p.obj.api_name).iter() {
        b.before(p)?;
    }
    Ok(())
}

/// `after` of every behaviour of the written change's object.
pub(crate) async fn after(app: &App, tx: &mut Tx, w: &Written<'_>) -> Result<()> {
    for b in crate::modules::behaviours(&w.obj.api_name).iter() {
        b.after(app, tx, w).await?;
    }
    Ok(())
}
