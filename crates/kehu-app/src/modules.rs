//! The module manifest: one declaration per module of what it adds to the platform — job
//! kinds, schedules, outbox consumers, pumps and record behaviours. The worker, the scheduler
//! and the write core iterate `MODULES`; adding a module is its own folder plus one line here
//! (see `docs/architecture.md`, "Adding a module").

use crate::records::behaviour::Behaviour;
use crate::work::{Consumer, JobKind, Pump, Schedule};
use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

/// Behaviours of a module, each for the records of one object (by api name).
pub type Behaviours = Vec<(&'static str, Arc<dyn Behaviour>)>;

type Extra = std::sync::RwLock<HashMap<String, Vec<Arc<dyn Behaviour>>>>;

/// What a module brings. Each list is built once, at first use.
pub struct Module {
    pub name: &'static str,
    pub job_kinds: fn() -> Vec<Arc<dyn JobKind>>,
    pub schedules: fn() -> Vec<Schedule>,
    pub consumers: fn() -> Vec<Arc<dyn Consumer>>,
    pub pumps: fn() -> Vec<Pump>,
    /// Behaviours per object api name, run by the write core on every change of its records.
    pub behaviours: fn() -> Behaviours,
    /// Its standard objects, seeded and evolved at every start (after the core migrations,
    /// in module order): `customers::apply_seed` of its seed files.
    pub seed: for<'a> fn(&'a kehu_db::Db) -> crate::work::BoxFut<'a, crate::Result<()>>,
}

fn no_seed(_: &kehu_db::Db) -> crate::work::BoxFut<'_, crate::Result<()>> {
    Box::pin(async { Ok(()) })
}

/// Seed every module's standard objects, in module order.
pub async fn seed_all(db: &kehu_db::Db) -> crate::Result<()> {
    for m in MODULES {
        (m.seed)(db).await?;
    }
    Ok(())
}

impl Module {
    /// A module that adds nothing yet (fill in what it has).
    pub const EMPTY: Module = Module {
        name: "",
        job_kinds: Vec::new,
        schedules: Vec::new,
        consumers: Vec::new,
        pumps: Vec::new,
        behaviours: Vec::new,
        seed: no_seed,
    };
}

/// Every module, in the order their behaviours run.
pub const MODULES: &[Module] = &[
    Module {
        name: "core",
        job_kinds: || vec![Arc::new(crate::jobs::BulkJob)],
        schedules: crate::work::core_schedules,
        pumps: || vec![crate::mail::PUMP, crate::activity::RECENT_PUMP],
        ..Module::EMPTY
    },
    Module {
        name: "customers",
        behaviours: crate::customers::behaviours,
        seed: crate::customers::seed,
        ..Module::EMPTY
    },
    Module {
        name: "activity",
        behaviours: crate::activity::behaviours,
        seed: crate::customers::seed_activities,
        ..Module::EMPTY
    },
    Module {
        name: "import",
        job_kinds: || {
            ["import", "import_check", "import_undo"]
                .into_iter()
                .map(|k| Arc::new(crate::import::ImportJob(k)) as Arc<dyn JobKind>)
                .collect()
        },
        ..Module::EMPTY
    },
    Module {
        name: "webhooks",
        consumers: || vec![Arc::new(crate::webhooks::WebhookConsumer)],
        pumps: || vec![crate::webhooks::PUMP],
        ..Module::EMPTY
    },
];

struct Registry {
    kinds: HashMap<&'static str, Arc<dyn JobKind>>,
    schedules: Vec<Schedule>,
    consumers: Vec<Arc<dyn Consumer>>,
    pumps: Vec<Pump>,
    behaviours: HashMap<&'static str, Vec<Arc<dyn Behaviour>>>,
}

fn registry() -> &'static Registry {
    static R: OnceLock<Registry> = OnceLock::new();
    R.get_or_init(|| {
        let mut r = Registry {
            kinds: HashMap::new(),
            schedules: Vec::new(),
            consumers: Vec::new(),
            pumps: Vec::new(),
            behaviours: HashMap::new(),
        };
        for m in MODULES {
            for k in (m.job_kinds)() {
                r.kinds.insert(k.name(), k);
            }
            r.schedules.extend((m.schedules)());
            r.consumers.extend((m.consumers)());
            r.pumps.extend((m.pumps)());
            for (object, b) in (m.behaviours)() {
                r.behaviours.entry(object).or_default().push(b);
            }
        }
        r
    })
}

pub fn job_kind(name: &str) -> Option<&'static Arc<dyn JobKind>> {
    registry().kinds.get(name)
}

pub fn schedules() -> &'static [Schedule] {
    &registry().schedules
}

pub fn consumers() -> &'static [Arc<dyn Consumer>] {
    &registry().consumers
}

pub fn pumps() -> &'static [Pump] {
    &registry().pumps
}

/// Behaviours added at run time (`extend_behaviours`), after the modules' own.
fn extra() -> &'static Extra {
    static E: OnceLock<Extra> = OnceLock::new();
    E.get_or_init(Default::default)
}

/// Add a behaviour to an object's records at run time (an extension loaded after start, or a
/// test observing the write core). It runs after the modules' behaviours.
pub fn extend_behaviours(object: &str, b: Arc<dyn Behaviour>) {
    if let Ok(mut m) = extra().write() {
        m.entry(object.to_string()).or_default().push(b);
    }
}

/// The behaviours of an object (by api name), in module order. Borrowed from the registry
/// (no allocation: the write core asks for every record it writes) unless behaviours were
/// added at run time.
pub fn behaviours(object: &str) -> std::borrow::Cow<'static, [Arc<dyn Behaviour>]> {
    let own: &'static [Arc<dyn Behaviour>] = registry().behaviours.get(object).map(Vec::as_slice).unwrap_or(&[]);
    match extra().read().ok().and_then(|m| m.get(object).cloned()) {
        Some(more) => own.iter().cloned().chain(more).collect::<Vec<_>>().into(),
        None => own.into(),
    }
}

#[cfg(test)]
mod tests {
    /// Every storage module (`kehu_db::schema::DB_MODULES`: migrations and tables) belongs
    /// to a module of this manifest, in the same order.
    #[test]
    fn storage_modules_belong_to_modules() {
        let names: Vec<&str> = super::MODULES.iter().map(|m| m.name).collect();
        let mut at = 0;
        for db in kehu_db::schema::DB_MODULES {
            let i = names.iter().position(|n| *n == db.name);
            assert!(i.is_some(), "storage module {} has no entry in MODULES", db.name);
            assert!(i >= Some(at), "storage module {} is out of module order", db.name);
            at = i.unwrap_or(at);
        }
    }
}
