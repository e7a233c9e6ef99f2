//! Setup, sign-in, throttling, sessions, CSRF, two-factor and password reset.

use crate::support::*;
use axum::http::StatusCode;

async fn first_run(t: TestWeb) {
    let b = t.browser();
    assert_eq!(b.get("/").await.location(), "/setup", "a fresh instance asks for its administrator");
    assert_eq!(b.get("/login").await.location(), "/setup");
    b.get("/setup").await;
    let weak = b
        .post_form(
            "/setup",
            &[
                ("org_name", "华夏"),
                ("name", "王"),
                ("email", "a@kehu.test"),
                ("password", "password123"),
                ("locale", "zh-CN"),
                ("time_zone", "Asia/Shanghai"),
            ],
        )
        .await;
    assert_eq!(weak.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(weak.body.contains("该密码太容易被猜到"), "translated field error shown");
    assert_eq!(count(&t, "users").await, 0, "nothing written");
    let admin = t.admin().await;
    let home = admin.get("/").await;
    assert_eq!(home.status, StatusCode::OK);
    assert!(home.body.contains("王管理，您好"), "signed in after setup");
    // The setup page is gone, for everyone, and a second setup changes nothing.
    let other = t.browser();
    assert_eq!(other.get("/setup").await.location(), "/login");
    other.get("/login").await;
    let again = other
        .post_form(
            "/setup",
            &[
                ("org_name", "X"),
                ("name", "Eve"),
                ("email", "eve@kehu.test"),
                ("password", ADMIN_PW),
                ("locale", "en"),
                ("time_zone", "UTC"),
            ],
        )
        .await;
    assert_eq!(again.location(), "/login");
    assert_eq!(count(&t, "users").await, 1);
    // The administrator is a real admin: the users page opens.
    assert_eq!(admin.get("/admin/users").await.status, StatusCode::OK);
}
both!(first_run);

async fn login_and_throttling(t: TestWeb) {
    let _admin = t.admin().await;
    t.user("rep@kehu.test", "sales_rep").await;
    let b = t.browser();
    b.get("/login").await;
    let bad = b.post_form("/login", &[("email", "rep@kehu.test"), ("password", "wrong password!")]).await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(bad.body.contains("邮箱或密码不正确"));
    let unknown = b.post_form("/login", &[("email", "nobody@kehu.test"), ("password", "wrong password!")]).await;
    assert!(unknown.body.contains("邮箱或密码不正确"), "same message for an unknown account");
    assert!(b.cookie("kehu_session").is_none());
    for _ in 0..4 {
        b.post_form("/login", &[("email", "rep@kehu.test"), ("password", "still wrong")]).await;
    }
    // Five failures: even the right password is refused for a while.
    let locked = b.post_form("/login", &[("email", "rep@kehu.test"), ("password", USER_PW)]).await;
    assert_eq!(locked.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(locked.body.contains("尝试次数过多"));
    assert!(b.cookie("kehu_session").is_none());
    // The counter lives in the database: another "server" (router) on the same database agrees.
    let t2 = t.second_server();
    let b2 = t2.browser();
    b2.get("/login").await;
    let r = b2.post_form("/login", &[("email", "rep@kehu.test"), ("password", USER_PW)]).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    // Another account from the same address still signs in (the address limit is higher).
    t.user("rep2@kehu.test", "sales_rep").await;
    let ok = b.post_form("/login", &[("email", "rep2@kehu.test"), ("password", USER_PW)]).await;
    assert_eq!(ok.location(), "/");
    // Many failures from one address lock the address for every account.
    let c = t.browser();
    let mut c = c;
    c.addr = "198.51.100.9:4000".parse().unwrap();
    c.get("/login").await;
    for i in 0..kehu_app::auth::MAX_FAILURES_ADDRESS {
        c.post_form("/login", &[("email", &format!("guess{i}@kehu.test")), ("password", "nope nope nope")]).await;
    }
    let r = c.post_form("/login", &[("email", "rep2@kehu.test"), ("password", USER_PW)]).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "address throttled");
}
both!(login_and_throttling);

async fn sessions_fixation_logout_disable(t: TestWeb) {
    let admin = t.admin().await;
    let rep_id = t.user("rep@kehu.test", "sales_rep").await;
    t.user("rep2@kehu.test", "sales_rep").await;
    // A planted cookie is replaced at sign-in, never adopted.
    let b = t.browser();
    b.set_cookie("kehu_session", "attacker-chosen-value");
    b.get("/login").await;
    b.post_form("/login", &[("email", "rep@kehu.test"), ("password", USER_PW)]).await;
    let first = b.cookie("kehu_session").unwrap();
    assert_ne!(first, "attacker-chosen-value");
    // Signing in again (a fixed token from before) gives a new token; the old one is dead.
    b.get("/account").await;
    let rr = b.post_form("/login", &[("email", "rep@kehu.test"), ("password", USER_PW)]).await;
    assert_eq!(rr.location(), "/");
    let second = b.cookie("kehu_session").unwrap();
    assert_ne!(first, second);
    assert!(t.app.session(&first).await.unwrap().is_none());
    assert!(t.app.session(&second).await.unwrap().is_some());
    // The database stores only a hash of the token.
    let rows = t.app.db.all(&kehu_db::Raw::new("SELECT token_hash FROM sessions", vec![])).await.unwrap();
    assert!(rows.iter().all(|r| r.str(0) != Some(second.as_str())));
    // Sign-out ends the session.
    assert_eq!(b.get("/").await.status, StatusCode::OK);
    b.get("/account").await;
    let out = b.post_form("/logout", &[]).await;
    assert_eq!(out.location(), "/login");
    assert_eq!(b.get("/").await.location(), "/login");
    assert!(t.app.session(&second).await.unwrap().is_none());
    // Disabling a user ends every session of theirs at once.
    let phone = t.login("rep@kehu.test").await;
    let laptop = t.login("rep@kehu.test").await;
    assert_eq!(phone.get("/account").await.status, StatusCode::OK);
    admin.get(&format!("/admin/users/{rep_id}")).await;
    let r = admin.post_form(&format!("/admin/users/{rep_id}/active"), &[("active", "false")]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert_eq!(phone.get("/account").await.location(), "/login");
    assert_eq!(laptop.get("/").await.location(), "/login");
    let again = t.browser();
    again.get("/login").await;
    let r = again.post_form("/login", &[("email", "rep@kehu.test"), ("password", USER_PW)]).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "a disabled user cannot sign in");
    // Changing the password: the current one is required; other devices are signed out.
    let other_device = t.login("rep2@kehu.test").await;
    let me = t.login("rep2@kehu.test").await;
    me.get("/account/security").await;
    let wrong = me
        .post_form(
            "/account/password",
            &[("current_password", "not it at all"), ("new_password", "fresh passphrase number 7")],
        )
        .await;
    assert_eq!(wrong.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(wrong.body.contains("密码不正确"));
    let ok = me
        .post_form("/account/password", &[("current_password", USER_PW), ("new_password", "fresh passphrase number 7")])
        .await;
    assert_eq!(ok.location(), "/account/security");
    assert_eq!(me.get("/account").await.status, StatusCode::OK, "this session stays");
    assert_eq!(other_device.get("/account").await.location(), "/login", "other sessions end");
    let n = t.browser();
    n.get("/login").await;
    assert_eq!(
        n.post_form("/login", &[("email", "rep2@kehu.test"), ("password", "fresh passphrase number 7")])
            .await
            .location(),
        "/"
    );
    // "Your sessions": sign out another device.
    let admin2 = t.browser();
    admin2.get("/login").await;
    admin2.post_form("/login", &[("email", "admin@kehu.test"), ("password", ADMIN_PW)]).await;
    let page = admin.get("/account/security").await;
    assert_eq!(page.body.matches("/revoke\"").count(), 1, "one other session listed with a sign-out button");
    admin.post_form("/account/sessions/revoke-others", &[]).await;
    assert_eq!(admin2.get("/").await.location(), "/login");
    assert_eq!(admin.get("/").await.status, StatusCode::OK, "the current session stays");
}
both!(sessions_fixation_logout_disable);

async fn csrf_protection(t: TestWeb) {
    let admin = t.admin().await;
    admin.get("/account").await;
    let before = t.app.db.one(&kehu_db::Raw::new("SELECT name FROM users", vec![])).await.unwrap().unwrap().string(0);
    let form = [("name", "Mallory"), ("locale", "en"), ("time_zone", "UTC")];
    let missing = admin.post_raw("/account", &form).await;
    assert_eq!(missing.status, StatusCode::FORBIDDEN);
    assert!(missing.body.contains("表单已过期"), "translated: {}", missing.body);
    let wrong = admin
        .post_raw("/account", &[("_csrf", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"), form[0], form[1], form[2]])
        .await;
    assert_eq!(wrong.status, StatusCode::FORBIDDEN);
    // A cross-site request is refused even with the token.
    let token = admin.csrf.lock().unwrap().clone();
    let body = format!("_csrf={token}&name=Mallory&locale=en&time_zone=UTC");
    let xs = admin
        .send(
            axum::http::Method::POST,
            "/account",
            &[("content-type", "application/x-www-form-urlencoded"), ("sec-fetch-site", "cross-site")],
            axum::body::Body::from(body),
        )
        .await;
    assert_eq!(xs.status, StatusCode::FORBIDDEN);
    let after = t.app.db.one(&kehu_db::Raw::new("SELECT name FROM users", vec![])).await.unwrap().unwrap().string(0);
    assert_eq!(before, after, "nothing changed");
    // The htmx header works like the form field.
    let ok = admin
        .send(
            axum::http::Method::POST,
            "/account",
            &[("content-type", "application/x-www-form-urlencoded"), ("x-csrf-token", &token)],
            axum::body::Body::from("name=Wang&locale=en&time_zone=UTC"),
        )
        .await;
    assert_eq!(ok.status, StatusCode::SEE_OTHER);
    // Before sign-in too: the login form needs the pre-session token.
    let b = t.browser();
    b.get("/login").await;
    let r = b.post_raw("/login", &[("email", "admin@kehu.test"), ("password", ADMIN_PW)]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(b.cookie("kehu_session").is_none());
    // Safe methods never change state: GET on a POST route is refused.
    assert_eq!(admin.get("/logout").await.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(admin.get("/").await.status, StatusCode::OK);
}
both!(csrf_protection);

fn secret_of(page: &str) -> String {
    let i = page.find("id=\"totp-secret\">").expect("secret shown") + 17;
    page[i..i + page[i..].find('<').unwrap()].to_string()
}

async fn totp_enrol_login_and_reset(t: TestWeb) {
    let _admin = t.admin().await;
    t.user("rep@kehu.test", "sales_rep").await;
    let b = t.login("rep@kehu.test").await;
    b.get("/account/security").await;
    let page = b.post_form("/account/2fa/begin", &[]).await;
    assert!(page.body.contains("<svg"), "QR code drawn");
    let secret = secret_of(&page.body);
    let wrong = b.post_form("/account/2fa/confirm", &[("code", "000000"), ("secret", &secret)]).await;
    assert_eq!(wrong.status, StatusCode::UNPROCESSABLE_ENTITY);
    let code = kehu_app::auth::totp_now(&secret);
    let done = b.post_form("/account/2fa/confirm", &[("code", &code), ("secret", &secret)]).await;
    assert_eq!(done.status, StatusCode::OK);
    let i = done.body.find("id=\"recovery-codes\">").unwrap();
    let codes: Vec<String> =
        done.body[i..].split("<div>").skip(1).take(10).map(|s| s[..s.find('<').unwrap()].to_string()).collect();
    assert_eq!(codes.len(), 10);
    b.post_form("/logout", &[]).await;
    // Sign in: the password alone gives a half session that reaches nothing.
    let c = t.browser();
    c.get("/login").await;
    let r = c.post_form("/login", &[("email", "rep@kehu.test"), ("password", USER_PW)]).await;
    assert_eq!(r.location(), "/login/2fa");
    assert_eq!(c.get("/account").await.location(), "/login/2fa");
    c.get("/login/2fa").await;
    let bad = c.post_form("/login/2fa", &[("code", "123456")]).await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    let pending = c.cookie("kehu_session").unwrap();
    // The code typed at enrolment is used up; the next one (within the allowed drift) works.
    let at_enrolment = c.post_form("/login/2fa", &[("code", &code)]).await;
    assert_eq!(at_enrolment.status, StatusCode::UNPROCESSABLE_ENTITY);
    let used = kehu_app::auth::totp_at(&secret, chrono::Utc::now().timestamp() + 30);
    let ok = c.post_form("/login/2fa", &[("code", &used)]).await;
    assert_eq!(ok.location(), "/");
    // The same code cannot be replayed by someone who saw it.
    let spy = t.browser();
    spy.get("/login").await;
    spy.post_form("/login", &[("email", "rep@kehu.test"), ("password", USER_PW)]).await;
    spy.get("/login/2fa").await;
    assert_eq!(spy.post_form("/login/2fa", &[("code", &used)]).await.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_ne!(c.cookie("kehu_session").unwrap(), pending, "a new token after the second factor");
    assert_eq!(c.get("/account").await.status, StatusCode::OK);
    // A recovery code works once.
    let d = t.browser();
    d.get("/login").await;
    d.post_form("/login", &[("email", "rep@kehu.test"), ("password", USER_PW)]).await;
    d.get("/login/2fa").await;
    assert_eq!(d.post_form("/login/2fa", &[("code", &codes[0].to_uppercase())]).await.location(), "/");
    let e = t.browser();
    e.get("/login").await;
    e.post_form("/login", &[("email", "rep@kehu.test"), ("password", USER_PW)]).await;
    e.get("/login/2fa").await;
    assert_eq!(e.post_form("/login/2fa", &[("code", &codes[0])]).await.status, StatusCode::UNPROCESSABLE_ENTITY);
    // A password reset by e-mail link does not bypass the second factor.
    let f = t.browser();
    f.get("/password/forgot").await;
    // A forged Host header does not steer the link: it uses the address seen at setup.
    let token = f.csrf.lock().unwrap().clone();
    let sent = f
        .send(
            axum::http::Method::POST,
            "/password/forgot",
            &[("content-type", "application/x-www-form-urlencoded"), ("host", "evil.example")],
            axum::body::Body::from(format!("_csrf={token}&email=rep%40kehu.test")),
        )
        .await;
    assert!(sent.body.contains("链接已发出"));
    let unknown = f.post_form("/password/forgot", &[("email", "nobody@kehu.test")]).await;
    assert_eq!(unknown.body.len(), sent.body.len(), "same answer for an unknown address");
    let body = t
        .app
        .db
        .one(&kehu_db::Raw::new("SELECT body FROM mails WHERE kind = 'password_reset'", vec![]))
        .await
        .unwrap()
        .unwrap()
        .string(0)
        .unwrap();
    let link = body.lines().find(|l| l.contains("/password/reset/")).unwrap().trim().to_string();
    assert!(link.starts_with("http://localhost/password/reset/"), "{link}");
    let path = &link[link.find("/password/reset/").unwrap()..];
    assert_eq!(f.get(path).await.status, StatusCode::OK);
    let weak = f.post_form(path, &[("password", "123456789012")]).await;
    assert_eq!(weak.status, StatusCode::UNPROCESSABLE_ENTITY);
    let rep_id = t
        .app
        .db
        .one(&kehu_db::Raw::new("SELECT id FROM users WHERE email = 'rep@kehu.test'", vec![]))
        .await
        .unwrap()
        .unwrap()
        .uuid(0)
        .unwrap();
    let (minted, _) =
        t.app.create_api_token(rep_id, "left behind", &kehu_app::auth::TokenScope::ALL, None).await.unwrap();
    let r = f.post_form(path, &[("password", "a brand new passphrase 2026")]).await;
    assert_eq!(r.location(), "/login");
    assert_eq!(t.api(&minted).get("/api/v1/me").await.status, StatusCode::UNAUTHORIZED, "a reset revokes API tokens");
    assert_eq!(c.get("/account").await.location(), "/login", "reset ends existing sessions");
    let reuse = f.post_form(path, &[("password", "another new passphrase 2027")]).await;
    assert!(reuse.body.contains("该链接无效"), "single use");
    f.get("/login").await;
    let r = f.post_form("/login", &[("email", "rep@kehu.test"), ("password", "a brand new passphrase 2026")]).await;
    assert_eq!(r.location(), "/login/2fa", "TOTP still required after a reset");
}
both!(totp_enrol_login_and_reset);

async fn language_switch(t: TestWeb) {
    let admin = t.admin().await;
    let zh = admin.get("/").await;
    assert!(zh.body.contains("lang=\"zh-CN\""));
    admin.post_form("/language", &[("locale", "en"), ("back", "/account")]).await;
    let en = admin.get("/account").await;
    assert!(en.body.contains("lang=\"en\"") && en.body.contains("Profile"), "profile language saved");
    // Anonymous visitors: Accept-Language, then the cookie from the switch.
    let mut v = t.browser();
    v.accept_language = Some("en-US,en;q=0.9".into());
    assert!(v.get("/login").await.body.contains("Sign in"));
    v.post_form("/language", &[("locale", "zh-CN"), ("back", "//evil.example/")]).await;
    assert!(v.get("/login").await.body.contains("登录"));
}
both!(language_switch);

async fn admin_manages_people(t: TestWeb) {
    let admin = t.admin().await;
    // Teams: a department tree; a team cannot move under its own child.
    admin.get("/admin/teams").await;
    assert_eq!(
        admin.post_form("/admin/teams", &[("name", "销售部"), ("parent_id", "")]).await.status,
        StatusCode::SEE_OTHER
    );
    let sales = t.app.teams().await.unwrap()[0].id.to_string();
    admin.post_form("/admin/teams", &[("name", "华东区"), ("parent_id", &sales)]).await;
    let teams = t.app.teams().await.unwrap();
    let east = teams.iter().find(|x| x.name == "华东区").unwrap();
    assert_eq!((east.parent_id.map(|p| p.to_string()), east.depth), (Some(sales.clone()), 1));
    let cycle = admin
        .post_form(&format!("/admin/teams/{sales}"), &[("name", "销售部"), ("parent_id", &east.id.to_string())])
        .await;
    assert_eq!(cycle.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(t.app.teams().await.unwrap()[0].parent_id, None, "nothing moved");
    // Invite: the link sets a password, then the user signs in.
    admin.get("/admin/users").await;
    let inv = admin
        .post_form(
            "/admin/users",
            &[
                ("name", "李娜"),
                ("email", "lina@kehu.test"),
                ("team_id", &east.id.to_string()),
                ("role", "sales_rep"),
                ("locale", "en"),
            ],
        )
        .await;
    assert_eq!(inv.status, StatusCode::OK, "{}", inv.body);
    let i = inv.body.find("id=\"invite-link\">").unwrap() + 17;
    let link = &inv.body[i..i + inv.body[i..].find('<').unwrap()];
    let path = &link[link.find("/password/reset/").unwrap()..];
    let dup = admin
        .post_form(
            "/admin/users",
            &[("name", "x"), ("email", "LINA@kehu.test"), ("team_id", ""), ("role", "sales_rep"), ("locale", "en")],
        )
        .await;
    assert!(dup.body.contains("该邮箱已被其他用户使用"));
    let lina = t.browser();
    lina.get(path).await;
    assert_eq!(lina.post_form(path, &[("password", USER_PW)]).await.location(), "/login");
    lina.get("/login").await;
    assert_eq!(lina.post_form("/login", &[("email", "lina@kehu.test"), ("password", USER_PW)]).await.location(), "/");
    assert!(lina.get("/").await.body.contains("Hello, 李娜"), "the invited user's language");
    assert_eq!(lina.get("/admin/users").await.status, StatusCode::FORBIDDEN, "a rep cannot administer");
    // Roles: hide a field from sales reps and take away revealing; the rep's API reads follow.
    admin.get("/admin/roles/sales_rep").await;
    let form = [
        ("obj.contact.read", "on"),
        ("obj.contact.create", "on"),
        ("obj.contact.update", "on"),
        ("obj.contact.scope", "own"),
        ("obj.company.read", "on"),
        ("obj.company.scope", "team"),
        ("obj.activity.read", "on"),
        ("obj.activity.scope", "own"),
        ("field.contact.phone", "none"),
        ("field.contact.email", "r"),
    ];
    let r = admin.post_form("/admin/roles/sales_rep", &form).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let role = t.app.role_by_key("sales_rep").await.unwrap();
    assert!(!role.grants.reveal_contact && !role.grants.objects["contact"].delete);
    assert_eq!(role.grants.objects["company"].scope, kehu_core::perm::Scope::Team);
    assert!(!role.grants.fields["contact.phone"].read && !role.grants.fields["contact.email"].write);
    let lina_id = t
        .app
        .db
        .one(&kehu_db::Raw::new("SELECT id FROM users WHERE email = 'lina@kehu.test'", vec![]))
        .await
        .unwrap()
        .unwrap()
        .uuid(0)
        .unwrap();
    let (tok, _) = t.app.create_api_token(lina_id, "t", &kehu_app::auth::TokenScope::ALL, None).await.unwrap();
    let api = t.api(&tok);
    let c = api.post("/api/v1/contact", serde_json::json!({"name": "客户甲"})).await;
    assert_eq!(c.status, StatusCode::CREATED, "{}", c.body);
    assert!(c.json()["fields"].get("phone").is_none(), "hidden field not returned");
    let w = api.post("/api/v1/contact", serde_json::json!({"name": "客户乙", "email": "b@kehu.test"})).await;
    assert_eq!(w.status, StatusCode::FORBIDDEN, "read-only field not writable: {}", w.body);
    // The administrator role itself is fixed.
    let fixed = admin.post_form("/admin/roles/admin", &form).await;
    assert_eq!(fixed.status, StatusCode::FORBIDDEN);
    // A custom role starts as a copy; the last admin cannot be demoted.
    admin.get("/admin/roles").await;
    let r = admin
        .post_form("/admin/roles", &[("name_zh", "区域经理"), ("name_en", "Area manager"), ("copy_from", "manager")])
        .await;
    assert!(r.location().starts_with("/admin/roles/role_"));
    let admin_id = t
        .app
        .db
        .one(&kehu_db::Raw::new("SELECT id FROM users WHERE email = 'admin@kehu.test'", vec![]))
        .await
        .unwrap()
        .unwrap()
        .uuid(0)
        .unwrap();
    admin.get(&format!("/admin/users/{admin_id}")).await;
    let demote = admin
        .post_form(&format!("/admin/users/{admin_id}"), &[("name", "王管理"), ("team_id", ""), ("role", "sales_rep")])
        .await;
    assert!(demote.body.contains("至少需要一个正常的管理员"), "{}", demote.status);
    assert_eq!(admin.get("/admin/users").await.status, StatusCode::OK, "still an admin");
}
both!(admin_manages_people);

async fn hardening(t: TestWeb) {
    let admin = t.admin().await;
    t.user("rep@kehu.test", "sales_rep").await;
    // Parallel guesses are all counted: at most the limit get a verdict, the rest are throttled.
    let b = t.browser();
    b.get("/login").await;
    let mut tasks = Vec::new();
    for i in 0..12 {
        let b = b.clone();
        tasks.push(tokio::spawn(async move {
            b.post_form("/login", &[("email", "rep@kehu.test"), ("password", &format!("guess number {i}"))])
                .await
                .status
        }));
    }
    let mut judged = 0;
    for task in tasks {
        if task.await.unwrap() == StatusCode::UNPROCESSABLE_ENTITY {
            judged += 1;
        }
    }
    assert!(judged <= kehu_app::auth::MAX_FAILURES_ACCOUNT as usize, "{judged} guesses were checked");
    // A wrong bearer token never falls back to the session cookie (and skips nothing).
    let csrf_free = admin
        .send(axum::http::Method::POST, "/logout", &[("authorization", "Bearer kehu_wrong")], axum::body::Body::empty())
        .await;
    assert_eq!(csrf_free.status, StatusCode::UNAUTHORIZED);
    let basic = admin
        .send(
            axum::http::Method::POST,
            "/logout",
            &[("authorization", "Basic dXNlcjpwdw==")],
            axum::body::Body::empty(),
        )
        .await;
    assert_eq!(
        basic.status,
        StatusCode::FORBIDDEN,
        "other schemes are ignored: the CSRF check applies: {}",
        basic.body
    );
    let page = admin.get("/account").await;
    assert_eq!(page.status, StatusCode::OK, "still signed in");
    assert_eq!(page.headers.get("cache-control").unwrap(), "no-store");
    // A user manager cannot make anyone (themselves included) an administrator.
    let sys = kehu_core::perm::Actor::system();
    let mut g = t.app.role_by_key("read_only").await.unwrap().grants;
    g.manage_users = true;
    t.app.set_role_grants("read_only", &g).await.unwrap();
    let hr_id = t.user("hr@kehu.test", "read_only").await;
    let hr = t.app.actor(hr_id).await.unwrap();
    let up = |role: &str| kehu_app::admin::UserPatch { role: Some(role.into()), ..Default::default() };
    assert_eq!(
        t.app.update_user(&hr, hr_id, &up("admin")).await.unwrap_err().fields[0].code,
        "permission.role_too_strong"
    );
    assert_eq!(
        t.app.update_user(&hr, hr_id, &up("manager")).await.unwrap_err().fields[0].code,
        "permission.role_too_strong"
    );
    let admin_id = t
        .app
        .db
        .one(&kehu_db::Raw::new("SELECT id FROM users WHERE email = 'admin@kehu.test'", vec![]))
        .await
        .unwrap()
        .unwrap()
        .uuid(0)
        .unwrap();
    assert_eq!(t.app.password_link(&hr, admin_id, "http://x").await.unwrap_err().code, "permission.admin_only");
    let off = kehu_app::admin::UserPatch { is_active: Some(false), ..Default::default() };
    assert_eq!(t.app.update_user(&hr, admin_id, &off).await.unwrap_err().code, "permission.admin_only");
    let inv = kehu_app::admin::Invite {
        email: "x@kehu.test".into(),
        name: "X".into(),
        team: None,
        role: "admin".into(),
        locale: "en".into(),
    };
    assert!(t.app.invite_user(&hr, &inv, "http://x").await.is_err());
    assert!(t.app.create_role(&hr, "Boss", "老板", "admin").await.is_err());
    let mut more = g.clone();
    more.reveal_contact = true;
    assert!(t.app.update_role(&hr, "read_only", &more).await.is_err());
    assert!(t.app.update_user(&sys, hr_id, &up("sales_rep")).await.is_ok(), "the system may");
    assert_eq!(t.app.role_by_key("read_only").await.unwrap().grants, g, "nothing changed");
}
both!(hardening);
