//! The permission model: roles grant per-object actions with a record scope (own / team / all)
//! and per-field read/write. An `Actor` is who is asking; the engine evaluates it on every
//! query and write, so no caller can forget.

use crate::error::{AppError, Result};
use crate::meta::{FieldDef, ObjectDef};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;
use uuid::Uuid;

/// Which records of an object a role reaches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// Records the actor owns.
    Own,
    /// Records owned by anyone in the actor's team or its sub-teams.
    Team,
    /// Every record.
    All,
}

/// What a role may do with one object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ObjectPerm {
    pub read: bool,
    pub create: bool,
    pub update: bool,
    pub delete: bool,
    pub export: bool,
    pub scope: Scope,
}

impl ObjectPerm {
    pub const NONE: ObjectPerm =
        ObjectPerm { read: false, create: false, update: false, delete: false, export: false, scope: Scope::Own };
    pub const fn full(scope: Scope) -> Self {
        ObjectPerm { read: true, create: true, update: true, delete: true, export: true, scope }
    }
}

/// Field-level access; absent means both allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldPerm {
    pub read: bool,
    pub write: bool,
}

/// An action on records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Read,
    Create,
    Update,
    Delete,
    Export,
}

/// A role's grants. Stored as JSON in the `roles` table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Grants {
    /// May create and change objects and fields.
    #[serde(default)]
    pub manage_metadata: bool,
    /// May invite and disable users, arrange teams and edit roles.
    #[serde(default)]
    pub manage_users: bool,
    /// May reveal unmasked phone numbers and e-mail addresses (each reveal is audited).
    #[serde(default)]
    pub reveal_contact: bool,
    /// Applies to objects without an entry in `objects` (including custom objects created later).
    pub default: ObjectPerm,
    /// Per-object grants by object api name.
    #[serde(default)]
    pub objects: BTreeMap<String, ObjectPerm>,
    /// Per-field grants, keyed `object.field`.
    #[serde(default)]
    pub fields: BTreeMap<String, FieldPerm>,
}

/// A role.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Role {
    pub id: Uuid,
    pub key: String,
    pub grants: Grants,
}

/// The default roles every instance starts with: `(key, en, zh, grants)`.
pub fn default_roles() -> Vec<(&'static str, &'static str, &'static str, Grants)> {
    let g = |manage, reveal_contact, default| Grants {
        manage_metadata: manage,
        manage_users: manage,
        reveal_contact,
        default,
        objects: BTreeMap::new(),
        fields: BTreeMap::new(),
    };
    vec![
        ("admin", "Administrator", "管理员", g(true, true, ObjectPerm::full(Scope::All))),
        ("manager", "Sales manager", "销售经理", g(false, true, ObjectPerm::full(Scope::Team))),
        (
            "sales_rep",
            "Sales rep",
            "销售代表",
            g(
                false,
                true,
                ObjectPerm { read: true, create: true, update: true, delete: true, export: false, scope: Scope::Own },
            ),
        ),
        (
            "read_only",
            "Read only",
            "只读",
            g(
                false,
                false,
                ObjectPerm {
                    read: true,
                    create: false,
                    update: false,
                    delete: false,
                    export: false,
                    scope: Scope::All,
                },
            ),
        ),
    ]
}

/// Who is asking: a user with a role and a place in the team tree, or the system itself.
#[derive(Debug, Clone)]
pub struct Actor {
    pub user_id: Option<Uuid>,
    /// The actor's team and all its sub-teams (for the team scope).
    pub teams: Vec<Uuid>,
    pub role: Arc<Role>,
    system: bool,
    /// This request asked to see unmasked contact details (only honoured with `reveal_contact`).
    reveal: bool,
}

/// The record-scope predicate the storage layer turns into SQL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScopeFilter {
    All,
    /// owner_id = user
    Owner(Uuid),
    /// owner_id IN (users of these teams)
    Teams(Vec<Uuid>),
    /// owner_id IN (these users): a team scope with its members read (search).
    Owners(Vec<Uuid>),
    /// No record at all (an actor without a user for an own scope).
    Nothing,
}

impl Actor {
    pub fn user(user_id: Uuid, teams: Vec<Uuid>, role: Arc<Role>) -> Self {
        Self { user_id: Some(user_id), teams, role, system: false, reveal: false }
    }
    /// Kehu itself (migrations, seeding, jobs): may do everything, attributed to nobody.
    pub fn system() -> Self {
        let (_, _, _, grants) = default_roles().remove(0);
        Self {
            user_id: None,
            teams: Vec::new(),
            role: Arc::new(Role { id: Uuid::nil(), key: "system".into(), grants }),
            system: true,
            reveal: true,
        }
    }
    /// The same actor asking to see unmasked phone numbers and e-mails; refused without the
    /// `reveal_contact` grant.
    pub fn revealing(&self) -> Result<Actor> {
        if !self.can_reveal() {
            return Err(AppError::forbidden("permission.reveal_denied"));
        }
        Ok(Actor { reveal: true, ..self.clone() })
    }
    /// Whether the role may reveal contact details at all.
    pub fn can_reveal(&self) -> bool {
        self.system || self.role.grants.reveal_contact
    }
    /// Whether values of phone and e-mail fields are shown unmasked to this actor now.
    pub fn sees_unmasked(&self) -> bool {
        self.system || (self.reveal && self.role.grants.reveal_contact)
    }
    /// Whether this actor's reads reveal contact details (and so must be audited).
    pub fn is_revealing(&self) -> bool {
        !self.system && self.sees_unmasked()
    }
    /// Holds the administrator role itself (more than `manage_users`).
    pub fn is_admin(&self) -> bool {
        self.system || self.role.key == "admin"
    }
    pub fn can_manage_users(&self) -> bool {
        self.system || self.role.grants.manage_users
    }
    pub fn is_system(&self) -> bool {
        self.system
    }
    pub fn object_perm(&self, obj: &ObjectDef) -> ObjectPerm {
        if self.system {
            return ObjectPerm::full(Scope::All);
        }
        *self.role.grants.objects.get(&obj.api_name).unwrap_or(&self.role.grants.default)
    }
    /// Check an action on an object; on success returns the scope that limits it.
    pub fn check(&self, obj: &ObjectDef, action: Action) -> Result<ScopeFilter> {
        let p = self.object_perm(obj);
        let ok = match action {
            Action::Read => p.read,
            Action::Create => p.create,
            Action::Update => p.update,
            Action::Delete => p.delete,
            Action::Export => p.export && p.read,
        };
        if !ok {
            return Err(AppError::forbidden("permission.denied"));
        }
        Ok(self.scope_filter(p.scope))
    }
    fn scope_filter(&self, scope: Scope) -> ScopeFilter {
        match (scope, self.user_id) {
            (Scope::All, _) => ScopeFilter::All,
            (Scope::Team, Some(_)) if !self.teams.is_empty() => ScopeFilter::Teams(self.teams.clone()),
            (Scope::Team | Scope::Own, Some(u)) => ScopeFilter::Owner(u),
            (_, None) => ScopeFilter::Nothing,
        }
    }
    /// Whether a record with this owner lies in the actor's scope for `action` on `obj`
    /// (used for new owners on create and reassignments; `owner_team` is the owner's team).
    pub fn owner_in_scope(&self, scope: &ScopeFilter, owner: Option<Uuid>, owner_team: Option<Uuid>) -> bool {
        match scope {
            ScopeFilter::All => true,
            ScopeFilter::Owner(u) => owner == Some(*u),
            ScopeFilter::Teams(ts) => owner_team.is_some_and(|t| ts.contains(&t)),
            ScopeFilter::Owners(us) => owner.is_some_and(|o| us.contains(&o)),
            ScopeFilter::Nothing => false,
        }
    }
    fn field_perm(&self, field: &FieldDef, obj: &ObjectDef) -> FieldPerm {
        if self.system {
            return FieldPerm { read: true, write: true };
        }
        let key = format!("{}.{}", obj.api_name, field.api_name);
        self.role.grants.fields.get(&key).copied().unwrap_or(FieldPerm { read: true, write: true })
    }
    pub fn can_read_field(&self, obj: &ObjectDef, field: &FieldDef) -> bool {
        self.field_perm(field, obj).read
    }
    pub fn can_write_field(&self, obj: &ObjectDef, field: &FieldDef) -> bool {
        let p = self.field_perm(field, obj);
        p.read && p.write && !field.readonly
    }
    pub fn can_manage_metadata(&self) -> bool {
        self.system || self.role.grants.manage_metadata
    }
}

/// `138****8000` for a mobile number (stored `+8613800138000`), the first three and last four
/// digits of other numbers; anything shorter than seven digits keeps only its last two.
pub fn mask_phone(s: &str) -> String {
    let national = s.strip_prefix("+86").unwrap_or(s);
    let chars: Vec<char> = national.chars().collect();
    let n = chars.len();
    let (head, tail) = if n >= 7 { (3, 4) } else { (0, n.min(2)) };
    let stars = n.saturating_sub(head + tail).max(1);
    let mut out: String = chars[..head].iter().collect();
    out.extend(std::iter::repeat_n('*', stars));
    out.extend(&chars[n - tail..]);
    out
}

/// `z***@example.com`: the first character of the local part, then the domain.
pub fn mask_email(s: &str) -> String {
    match s.split_once('@') {
        Some((local, domain)) => {
            let first: String = local.chars().take(1).collect();
            format!("{first}***@{domain}")
        }
        None => "***".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks() {
        assert_eq!(mask_phone("+8613800138000"), "138****8000");
        assert_eq!(mask_phone("02165551234"), "021****1234");
        assert_eq!(mask_phone("12345"), "***45");
        assert_eq!(mask_phone(""), "*");
        assert_eq!(mask_email("zhang.wei@example.com"), "z***@example.com");
        assert_eq!(mask_email("张@例子.cn"), "张***@例子.cn");
        let (_, _, _, ro) = default_roles().remove(3);
        let viewer =
            Actor::user(Uuid::now_v7(), vec![], Arc::new(Role { id: Uuid::nil(), key: "ro".into(), grants: ro }));
        assert!(viewer.revealing().is_err());
        assert!(!viewer.sees_unmasked());
        let (_, _, _, admin) = default_roles().remove(0);
        let a = Actor::user(Uuid::now_v7(), vec![], Arc::new(Role { id: Uuid::nil(), key: "a".into(), grants: admin }));
        assert!(!a.sees_unmasked(), "masked until a reveal is asked for");
        assert!(a.revealing().unwrap().sees_unmasked());
    }

    #[test]
    fn default_roles_serialise() {
        for (key, _, _, g) in default_roles() {
            let s = serde_json::to_string(&g).unwrap();
            let back: Grants = serde_json::from_str(&s).unwrap();
            assert_eq!(back, g, "{key}");
        }
    }

    #[test]
    fn scope_filters() {
        let (_, _, _, grants) = default_roles().remove(1);
        let role = Arc::new(Role { id: Uuid::nil(), key: "manager".into(), grants });
        let me = Uuid::now_v7();
        let team = Uuid::now_v7();
        let a = Actor::user(me, vec![team], role.clone());
        assert_eq!(a.scope_filter(Scope::Team), ScopeFilter::Teams(vec![team]));
        assert_eq!(a.scope_filter(Scope::Own), ScopeFilter::Owner(me));
        let lonely = Actor::user(me, vec![], role);
        assert_eq!(lonely.scope_filter(Scope::Team), ScopeFilter::Owner(me));
        assert!(!a.owner_in_scope(&ScopeFilter::Teams(vec![team]), Some(me), None));
        assert!(a.owner_in_scope(&ScopeFilter::Teams(vec![team]), Some(me), Some(team)));
    }
}
