//! The browser walk-through in headless Chromium (Debian's `chromium` + `chromedriver`, driven
//! over the WebDriver protocol): sign up the first administrator, sign out, sign in, switch to
//! English and back, and keep screenshots at desktop and phone width in
//! `target/screenshots/` for a person to look at.
//!
//! Runs when chromedriver is installed; `KEHU_BROWSER_TESTS=required` (set by `.ci/run`) makes
//! a missing browser a failure instead of a skip.

use kehu_app::App;
use kehu_db::conn::ConnectOptions;
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

pub(crate) struct Driver {
    http: reqwest::Client,
    base: String,
    session: String,
    child: Child,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn find(cmds: &[&str]) -> Option<PathBuf> {
    for c in cmds {
        for dir in std::env::var("PATH").unwrap_or_default().split(':') {
            let p = PathBuf::from(dir).join(c);
            if p.exists() {
                return Some(p);
            }
        }
    }
    None
}

impl Driver {
    pub(crate) async fn start() -> Option<Driver> {
        let required = std::env::var("KEHU_BROWSER_TESTS").is_ok_and(|v| v == "required");
        let (Some(driver), Some(chromium)) = (find(&["chromedriver"]), find(&["chromium", "chromium-browser"])) else {
            assert!(!required, "KEHU_BROWSER_TESTS=required but chromium/chromedriver are missing");
            eprintln!("chromium or chromedriver not installed: browser test skipped");
            return None;
        };
        let port = std::net::TcpListener::bind("127.0.0.1:0").ok()?.local_addr().ok()?.port();
        let child = Command::new(driver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let base = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::new();
        for _ in 0..100 {
            if http.get(format!("{base}/status")).send().await.is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let caps = json!({"capabilities": {"alwaysMatch": {"browserName": "chrome", "goog:loggingPrefs": {"browser": "ALL"}, "goog:chromeOptions": {
            "binary": chromium.to_string_lossy(),
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1280,900", "--lang=zh-CN", "--force-device-scale-factor=1"]
        }}}});
        let mut d = Driver { http, base, session: String::new(), child };
        let v = d.cmd(reqwest::Method::POST, "/session", Some(caps)).await;
        d.session = v["sessionId"].as_str().expect("webdriver session").to_string();
        Some(d)
    }

    pub(crate) async fn cmd(&self, m: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let url = if self.session.is_empty() {
            format!("{}{path}", self.base)
        } else {
            format!("{}/session/{}{path}", self.base, self.session)
        };
        let mut req = self.http.request(m, url);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let v: Value = req.send().await.expect("webdriver").json().await.expect("webdriver json");
        if let Some(err) = v["value"].get("error") {
            panic!("webdriver {path}: {err} {}", v["value"]["message"]);
        }
        v["value"].clone()
    }

    pub(crate) async fn go(&self, url: &str) {
        self.cmd(reqwest::Method::POST, "/url", Some(json!({"url": url}))).await;
    }
    pub(crate) async fn url(&self) -> String {
        self.cmd(reqwest::Method::GET, "/url", None).await.as_str().unwrap_or("").to_string()
    }
    pub(crate) async fn source(&self) -> String {
        self.cmd(reqwest::Method::GET, "/source", None).await.as_str().unwrap_or("").to_string()
    }
    pub(crate) async fn el(&self, css: &str) -> String {
        for _ in 0..50 {
            let r = self
                .http
                .post(format!("{}/session/{}/element", self.base, self.session))
                .json(&json!({"using": "css selector", "value": css}))
                .send()
                .await
                .expect("webdriver");
            let v: Value = r.json().await.expect("json");
            if let Some(id) = v["value"][ELEMENT].as_str() {
                return id.to_string();
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("no element {css} on {}", self.url().await);
    }
    pub(crate) async fn type_in(&self, css: &str, text: &str) {
        let e = self.el(css).await;
        self.cmd(reqwest::Method::POST, &format!("/element/{e}/clear"), Some(json!({}))).await;
        self.cmd(reqwest::Method::POST, &format!("/element/{e}/value"), Some(json!({"text": text}))).await;
    }
    /// Type into an element without clearing it first (keys such as Enter are `\u{E007}`).
    pub(crate) async fn keys(&self, css: &str, text: &str) {
        let e = self.el(css).await;
        self.cmd(reqwest::Method::POST, &format!("/element/{e}/value"), Some(json!({"text": text}))).await;
    }
    pub(crate) async fn click(&self, css: &str) {
        let e = self.el(css).await;
        self.cmd(reqwest::Method::POST, &format!("/element/{e}/click"), Some(json!({}))).await;
    }
    /// Drag an element onto another with the mouse (press, move in steps, release).
    pub(crate) async fn drag(&self, from: &str, to: &str) {
        let (a, b) = (self.el(from).await, self.el(to).await);
        let step = |e: &str, x: i64, y: i64, ms: u64| json!({"type": "pointerMove", "duration": ms, "origin": {ELEMENT: e}, "x": x, "y": y});
        let actions = json!({"actions": [{"type": "pointer", "id": "mouse", "parameters": {"pointerType": "mouse"}, "actions": [
            step(&a, 0, 0, 0),
            {"type": "pointerDown", "button": 0},
            {"type": "pause", "duration": 100},
            step(&a, 8, 8, 150),
            step(&b, 0, -5, 400),
            step(&b, 0, 5, 200),
            {"type": "pointerUp", "button": 0}
        ]}]});
        self.cmd(reqwest::Method::POST, "/actions", Some(actions)).await;
    }
    pub(crate) async fn wait_for(&self, what: &str) {
        for _ in 0..50 {
            if self.source().await.contains(what) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("page never showed {what:?}: {}", self.url().await);
    }
    pub(crate) async fn size(&self, w: u32, h: u32) {
        self.cmd(reqwest::Method::POST, "/window/rect", Some(json!({"width": w, "height": h}))).await;
    }
    pub(crate) async fn screenshot(&self, name: &str) -> PathBuf {
        use base64::Engine;
        let b64 = self.cmd(reqwest::Method::GET, "/screenshot", None).await;
        let bytes = base64::engine::general_purpose::STANDARD.decode(b64.as_str().unwrap_or("")).expect("png");
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/screenshots");
        std::fs::create_dir_all(&dir).expect("screenshot dir");
        let p = dir.join(format!("{name}.png"));
        std::fs::write(&p, &bytes).expect("write screenshot");
        assert!(bytes.len() > 5_000, "{name}: an empty-looking screenshot");
        p
    }
    /// Console errors and CSP violations the pages logged since the last call (Chromium
    /// reports a refused inline script or style as a SEVERE console entry).
    pub(crate) async fn console_errors(&self) -> Vec<String> {
        let v = self.cmd(reqwest::Method::POST, "/se/log", Some(json!({"type": "browser"}))).await;
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter(|e| {
                        e["level"] == "SEVERE"
                            || e["message"].as_str().is_some_and(|m| m.contains("Content Security Policy"))
                    })
                    .map(|e| e["message"].as_str().unwrap_or("").to_string())
                    .collect()
            })
            .unwrap_or_default()
    }
    /// End the session; fails the test if any page logged a console error or CSP violation.
    pub(crate) async fn quit(&self) {
        let errors = self.console_errors().await;
        let _ = self.http.delete(format!("{}/session/{}", self.base, self.session)).send().await;
        assert!(errors.is_empty(), "console errors or CSP violations:\n{}", errors.join("\n"));
    }
}

/// Create the first administrator (王小明) through the setup page and land on home.
pub(crate) async fn first_admin(d: &Driver, base: &str) {
    d.go(&format!("{base}/")).await;
    d.wait_for("setup-form").await;
    d.type_in("#org_name", "华夏科技有限公司").await;
    d.type_in("#name", "王小明").await;
    d.type_in("#email", "wang@huaxia.test").await;
    d.type_in("#password", "Sturdy-Lantern-Harbor-42").await;
    d.click("#locale option[value='zh-CN']").await;
    d.click("#setup-form button[type=submit]").await;
    d.wait_for("王小明").await;
}

/// A fresh app on a temporary SQLite file, served on a free port: the app, its base URL, and
/// the directory to keep alive for the test.
pub(crate) async fn fresh_app() -> (std::sync::Arc<App>, String, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("kehu.db").display());
    let app = App::open(&url, &ConnectOptions { max_connections: 4, pg_schema: None }).await.unwrap();
    let base = serve(app.clone()).await;
    (app, base, dir)
}

/// Serve the real app on a free port; returns its base URL.
pub async fn serve(app: std::sync::Arc<App>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let router = kehu_web::router(app, Default::default());
    tokio::spawn(async move {
        let _ = axum::serve(listener, router.into_make_service_with_connect_info::<SocketAddr>()).await;
    });
    format!("http://{addr}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_up_sign_out_sign_in_switch_language() {
    let Some(d) = Driver::start().await else { return };
    let (_app, base, _dir) = fresh_app().await;

    // First run: the setup page.
    d.go(&format!("{base}/")).await;
    assert!(d.url().await.ends_with("/setup"));
    d.wait_for("setup-form").await;
    d.screenshot("setup-desktop").await;
    d.type_in("#org_name", "华夏科技有限公司").await;
    d.type_in("#name", "王小明").await;
    d.type_in("#email", "wang@huaxia.test").await;
    d.type_in("#password", "Sturdy-Lantern-Harbor-42").await;
    d.click("#locale option[value='zh-CN']").await;
    d.click("#setup-form button[type=submit]").await;
    d.wait_for("王小明，您好").await;
    assert!(d.url().await.ends_with('/'));
    d.screenshot("home-desktop-zh").await;

    // Sign out through the user menu.
    d.click("#user-menu summary").await;
    d.click("#sign-out").await;
    d.wait_for("login-form").await;
    assert!(d.url().await.ends_with("/login"));
    d.wait_for("登录").await;
    d.screenshot("login-desktop").await;

    // Sign in again.
    d.type_in("#email", "wang@huaxia.test").await;
    d.type_in("#password", "Sturdy-Lantern-Harbor-42").await;
    d.click("#login-form button[type=submit]").await;
    d.wait_for("王小明，您好").await;

    // English, then back to Chinese (the choice is saved in the profile).
    d.click("#user-menu summary").await;
    d.click("#switch-language").await;
    d.wait_for("Hello, 王小明").await;
    d.screenshot("home-desktop-en").await;
    d.go(&format!("{base}/admin/roles/sales_rep")).await;
    d.wait_for("Sales rep").await;
    d.screenshot("role-desktop-en").await;
    d.go(&format!("{base}/")).await;
    d.click("#user-menu summary").await;
    d.click("#switch-language").await;
    d.wait_for("王小明，您好").await;

    // Phone width: the sidebar folds away behind the menu button.
    d.size(375, 812).await;
    d.go(&format!("{base}/")).await;
    d.wait_for("王小明，您好").await;
    d.screenshot("home-phone").await;
    d.click("label.menu-btn").await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    d.screenshot("nav-phone").await;
    d.go(&format!("{base}/account/security")).await;
    d.wait_for("两步验证").await;
    d.screenshot("security-phone").await;
    d.quit().await;
}
