//! Test support: a fresh app per test on either backend, and fixtures.

use kehu_app::App;
use kehu_core::perm::Actor;
use kehu_core::Uuid;
use kehu_db::conn::ConnectOptions;
use kehu_db::{Backend, Raw};
use serde_json::{Map, Value as Json};
use std::sync::Arc;

pub struct TestApp {
    pub app: Arc<App>,
    _dir: Option<tempfile::TempDir>,
}

impl std::ops::Deref for TestApp {
    type Target = App;
    fn deref(&self) -> &App {
        &self.app
    }
}

pub async fn sqlite() -> TestApp {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}", dir.path().join("kehu.db").display());
    let app = App::open(&url, &ConnectOptions { max_connections: 4, pg_schema: None }).await.expect("open sqlite");
    TestApp { app, _dir: Some(dir) }
}

/// A fresh schema in the PostgreSQL database named by `KEHU_TEST_POSTGRES_URL`. Without the
/// variable the PostgreSQL half is skipped locally, and fails in CI (`CI` set).
pub async fn postgres() -> Option<TestApp> {
    let Ok(url) = std::env::var("KEHU_TEST_POSTGRES_URL") else {
        assert!(std::env::var("CI").is_err(), "CI must set KEHU_TEST_POSTGRES_URL");
        eprintln!("KEHU_TEST_POSTGRES_URL not set: PostgreSQL half skipped");
        return None;
    };
    let schema = format!("t_{}", Uuid::now_v7().simple());
    let opts = ConnectOptions { max_connections: 4, pg_schema: Some(schema) };
    Some(TestApp { app: App::open(&url, &opts).await.expect("open postgres"), _dir: None })
}

/// Run a test body on both backends: `both!(name)` expects `async fn name(t: TestApp)`.
macro_rules! both {
    ($name:ident) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name(crate::support::sqlite().await).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if let Some(t) = crate::support::postgres().await {
                    super::$name(t).await
                }
            }
        }
    };
}

pub fn obj(v: Json) -> Map<String, Json> {
    v.as_object().cloned().expect("json object")
}

pub fn system() -> Actor {
    Actor::system()
}

/// Count rows of a table (a fixed name from the test, never input).
pub async fn count(t: &TestApp, table: &str) -> i64 {
    let r = t.db.one(&Raw::new(format!("SELECT COUNT(*) FROM {table}"), vec![])).await.expect("count");
    r.and_then(|r| r.i64(0)).unwrap_or(-1)
}

/// Column names of a physical table.
pub async fn columns(t: &TestApp, table: &str) -> Vec<String> {
    let q = match t.db.backend() {
        Backend::Sqlite => Raw::new("SELECT name FROM pragma_table_info($1)", vec![table.into()]),
        Backend::Postgres => Raw::new(
            "SELECT column_name::text FROM information_schema.columns WHERE table_name = $1 AND table_schema = current_schema()",
            vec![table.into()],
        ),
    };
    t.db.all(&q).await.expect("columns").iter().filter_map(|r| r.string(0)).collect()
}

/// Teams and users for permission tests:
/// sales (manager_s) ├ east (rep_e1, rep_e2) └ north (rep_n); support (manager_o, viewer).
pub struct Org {
    pub admin: Actor,
    pub manager_sales: Actor,
    pub rep_east1: Actor,
    pub rep_east2: Actor,
    pub rep_north: Actor,
    pub manager_other: Actor,
    pub viewer: Actor,
}

pub async fn org(t: &TestApp) -> Org {
    let sales = t.create_team("销售部", None).await.unwrap();
    let east = t.create_team("华东", Some(sales)).await.unwrap();
    let north = t.create_team("华北", Some(sales)).await.unwrap();
    let other = t.create_team("客服部", None).await.unwrap();
    let mk = |email: &'static str, team: Uuid, role: &'static str| async move {
        let id = t.create_user(email, email, Some(team), role).await.unwrap();
        t.actor(id).await.unwrap()
    };
    Org {
        admin: mk("admin@kehu.test", sales, "admin").await,
        manager_sales: mk("m.sales@kehu.test", sales, "manager").await,
        rep_east1: mk("e1@kehu.test", east, "sales_rep").await,
        rep_east2: mk("e2@kehu.test", east, "sales_rep").await,
        rep_north: mk("n1@kehu.test", north, "sales_rep").await,
        manager_other: mk("m.other@kehu.test", other, "manager").await,
        viewer: mk("viewer@kehu.test", other, "read_only").await,
    }
}
