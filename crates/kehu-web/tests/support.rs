//! Test support: the real router on a fresh database (SQLite file or PostgreSQL schema), and a
//! browser-like client that keeps cookies and the page's CSRF token.

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{header, HeaderMap, Method, Request, StatusCode};
use axum::Router;
use kehu_app::App;
use kehu_core::Uuid;
use kehu_db::conn::ConnectOptions;
use serde_json::Value as Json;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use tower::ServiceExt;

pub struct TestWeb {
    pub app: Arc<App>,
    pub router: Router,
    _dir: Option<tempfile::TempDir>,
}

pub async fn sqlite() -> TestWeb {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}", dir.path().join("kehu.db").display());
    let app = App::open(&url, &ConnectOptions { max_connections: 4, pg_schema: None }).await.expect("open sqlite");
    app.set_mail_enabled(true);
    TestWeb { router: kehu_web::router(app.clone(), Default::default()), app, _dir: Some(dir) }
}

pub async fn postgres() -> Option<TestWeb> {
    let Ok(url) = std::env::var("KEHU_TEST_POSTGRES_URL") else {
        assert!(std::env::var("CI").is_err(), "CI must set KEHU_TEST_POSTGRES_URL");
        eprintln!("KEHU_TEST_POSTGRES_URL not set: PostgreSQL half skipped");
        return None;
    };
    let schema = format!("t_{}", Uuid::now_v7().simple());
    let opts = ConnectOptions { max_connections: 4, pg_schema: Some(schema) };
    let app = App::open(&url, &opts).await.expect("open postgres");
    app.set_mail_enabled(true);
    Some(TestWeb { router: kehu_web::router(app.clone(), Default::default()), app, _dir: None })
}

/// Run a test body on both backends: `both!(name)` expects `async fn name(t: TestWeb)`.
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

/// A response, with the body as text.
pub struct Resp {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl Resp {
    pub fn json(&self) -> Json {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
    pub fn location(&self) -> &str {
        self.headers.get(header::LOCATION).and_then(|v| v.to_str().ok()).unwrap_or("")
    }
    pub fn code(&self) -> String {
        self.json()["error"]["code"].as_str().unwrap_or("").to_string()
    }
}

/// A browser: cookies, the last CSRF token seen in a page, a client address.
#[derive(Clone)]
pub struct Browser {
    router: Router,
    pub cookies: Arc<Mutex<HashMap<String, String>>>,
    pub csrf: Arc<Mutex<String>>,
    pub addr: SocketAddr,
    pub accept_language: Option<String>,
}

impl TestWeb {
    pub fn browser(&self) -> Browser {
        Browser {
            router: self.router.clone(),
            cookies: Default::default(),
            csrf: Default::default(),
            addr: "203.0.113.7:50000".parse().expect("addr"),
            accept_language: None,
        }
    }

    /// Set up the instance with an administrator and return their signed-in browser.
    pub async fn admin(&self) -> Browser {
        let b = self.browser();
        b.get("/setup").await;
        let r = b
            .post_form(
                "/setup",
                &[
                    ("org_name", "华夏科技"),
                    ("name", "王管理"),
                    ("email", "admin@kehu.test"),
                    ("password", ADMIN_PW),
                    ("locale", "zh-CN"),
                    ("time_zone", "Asia/Shanghai"),
                ],
            )
            .await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "setup: {}", r.body);
        b.get("/").await;
        b
    }

    /// Another app server on the same database (its own router and in-process state).
    pub fn second_server(&self) -> TestWeb {
        TestWeb { app: self.app.clone(), router: kehu_web::router(self.app.clone(), Default::default()), _dir: None }
    }

    /// A user with a password and role, created through the app.
    pub async fn user(&self, email: &str, role: &str) -> Uuid {
        self.app.create_user_with_password(email, email, USER_PW, role).await.expect("user")
    }

    /// A signed-in browser for a user made with `user`.
    pub async fn login(&self, email: &str) -> Browser {
        let b = self.browser();
        b.get("/login").await;
        let r = b.post_form("/login", &[("email", email), ("password", USER_PW)]).await;
        assert_eq!((r.status, r.location()), (StatusCode::SEE_OTHER, "/"), "login: {}", r.body);
        b.get("/").await;
        b
    }
}

pub const ADMIN_PW: &str = "Sturdy-Lantern-Harbor-42";
pub const USER_PW: &str = "purple elephant dances 天天";

impl Browser {
    pub fn cookie(&self, name: &str) -> Option<String> {
        self.cookies.lock().ok()?.get(name).cloned()
    }
    pub fn set_cookie(&self, name: &str, value: &str) {
        if let Ok(mut c) = self.cookies.lock() {
            c.insert(name.into(), value.into());
        }
    }

    pub async fn send(&self, method: Method, path: &str, headers: &[(&str, &str)], body: Body) -> Resp {
        let mut req = Request::builder().method(method).uri(path);
        let cookie = {
            let c = self.cookies.lock().expect("cookies");
            c.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("; ")
        };
        if !cookie.is_empty() {
            req = req.header(header::COOKIE, cookie);
        }
        if let Some(l) = &self.accept_language {
            req = req.header(header::ACCEPT_LANGUAGE, l);
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let mut req = req.body(body).expect("request");
        req.extensions_mut().insert(ConnectInfo(self.addr));
        let res = self.router.clone().oneshot(req).await.expect("response");
        let status = res.status();
        let headers = res.headers().clone();
        for v in headers.get_all(header::SET_COOKIE) {
            let s = v.to_str().unwrap_or("");
            if let Some((kv, attrs)) = s.split_once(';').or(Some((s, ""))) {
                if let Some((k, v)) = kv.split_once('=') {
                    let mut c = self.cookies.lock().expect("cookies");
                    if attrs.contains("Max-Age=0") {
                        c.remove(k.trim());
                    } else {
                        c.insert(k.trim().into(), v.trim().into());
                    }
                }
            }
        }
        let bytes = axum::body::to_bytes(res.into_body(), 16 << 20).await.expect("body");
        let body = String::from_utf8_lossy(&bytes).into_owned();
        if let Some(t) = meta_csrf(&body) {
            *self.csrf.lock().expect("csrf") = t;
        }
        Resp { status, headers, body }
    }

    pub async fn get(&self, path: &str) -> Resp {
        self.send(Method::GET, path, &[], Body::empty()).await
    }

    /// Post a form with the current CSRF token added.
    pub async fn post_form(&self, path: &str, fields: &[(&str, &str)]) -> Resp {
        let token = self.csrf.lock().expect("csrf").clone();
        let mut all: Vec<(&str, &str)> = vec![("_csrf", token.as_str())];
        all.extend_from_slice(fields);
        self.post_raw(path, &all).await
    }

    /// Post a form exactly as given (no CSRF token added).
    pub async fn post_raw(&self, path: &str, fields: &[(&str, &str)]) -> Resp {
        let body = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(fields).finish();
        self.send(Method::POST, path, &[("content-type", "application/x-www-form-urlencoded")], Body::from(body)).await
    }
}

fn meta_csrf(body: &str) -> Option<String> {
    let i = body.find("name=\"csrf-token\" content=\"")?;
    let rest = &body[i + 27..];
    Some(rest[..rest.find('"')?].to_string())
}

/// An API client with a bearer token.
pub struct Api {
    router: Router,
    pub token: String,
    pub lang: Option<&'static str>,
}

impl TestWeb {
    pub fn api(&self, token: &str) -> Api {
        Api { router: self.router.clone(), token: token.into(), lang: None }
    }
}

impl Api {
    pub async fn call(&self, method: Method, path: &str, body: Option<Json>, headers: &[(&str, &str)]) -> Resp {
        let mut req =
            Request::builder().method(method).uri(path).header(header::AUTHORIZATION, format!("Bearer {}", self.token));
        if let Some(l) = self.lang {
            req = req.header(header::ACCEPT_LANGUAGE, l);
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let body = match body {
            Some(b) => {
                req = req.header(header::CONTENT_TYPE, "application/json");
                Body::from(b.to_string())
            }
            None => Body::empty(),
        };
        let res = self.router.clone().oneshot(req.body(body).expect("request")).await.expect("response");
        let status = res.status();
        let headers = res.headers().clone();
        let bytes = axum::body::to_bytes(res.into_body(), 16 << 20).await.expect("body");
        Resp { status, headers, body: String::from_utf8_lossy(&bytes).into_owned() }
    }
    pub async fn get(&self, path: &str) -> Resp {
        self.call(Method::GET, path, None, &[]).await
    }
    pub async fn post(&self, path: &str, body: Json) -> Resp {
        self.call(Method::POST, path, Some(body), &[]).await
    }
}

/// Count rows of a table (a fixed name from the test).
pub async fn count(t: &TestWeb, table: &str) -> i64 {
    let r = t.app.db.one(&kehu_db::Raw::new(format!("SELECT COUNT(*) FROM {table}"), vec![])).await.expect("count");
    r.and_then(|r| r.i64(0)).unwrap_or(-1)
}

/// A form POST as htmx sends it (with the page's CSRF token and `HX-Request`).
pub async fn htmx_post(b: &Browser, path: &str, fields: &[(&str, &str)]) -> Resp {
    let token = b.csrf.lock().unwrap().clone();
    let mut all: Vec<(&str, &str)> = vec![("_csrf", token.as_str())];
    all.extend_from_slice(fields);
    let body = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(&all).finish();
    b.send(
        Method::POST,
        path,
        &[("content-type", "application/x-www-form-urlencoded"), ("hx-request", "true")],
        Body::from(body),
    )
    .await
}
