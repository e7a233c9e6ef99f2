//! Outgoing mail: queued messages are delivered over SMTP once, marked sent, their bodies
//! (which can hold a reset link) dropped; failures are recorded and retried a bounded number of
//! times. A tiny SMTP server in the test stands in for the real one.

use crate::support::*;
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

/// Accepts SMTP sessions and keeps each message's DATA; `fail` makes it refuse recipients.
async fn fake_smtp(fail: bool) -> (u16, Arc<Mutex<Vec<String>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let got = Arc::new(Mutex::new(Vec::new()));
    let g = got.clone();
    tokio::spawn(async move {
        while let Ok((sock, _)) = listener.accept().await {
            let g = g.clone();
            tokio::spawn(async move {
                let (r, mut w) = sock.into_split();
                let mut lines = BufReader::new(r).lines();
                w.write_all(b"220 fake ESMTP\r\n").await.ok();
                let mut data: Option<String> = None;
                while let Ok(Some(line)) = lines.next_line().await {
                    if let Some(d) = data.as_mut() {
                        if line == "." {
                            g.lock().unwrap().push(data.take().unwrap());
                            w.write_all(b"250 queued\r\n").await.ok();
                        } else {
                            d.push_str(&line);
                            d.push('\n');
                        }
                        continue;
                    }
                    let cmd = line.to_ascii_uppercase();
                    let reply: &[u8] = if cmd.starts_with("EHLO") || cmd.starts_with("HELO") {
                        b"250-fake\r\n250 8BITMIME\r\n"
                    } else if cmd.starts_with("RCPT") && fail {
                        b"550 no such user\r\n"
                    } else if cmd.starts_with("DATA") {
                        data = Some(String::new());
                        b"354 go ahead\r\n"
                    } else if cmd.starts_with("QUIT") {
                        w.write_all(b"221 bye\r\n").await.ok();
                        break;
                    } else {
                        b"250 ok\r\n"
                    };
                    w.write_all(reply).await.ok();
                }
            });
        }
    });
    (port, got)
}

async fn delivers_queued_mail_once(t: TestApp) {
    t.set_mail_enabled(true);
    let admin = t.create_user("a@kehu.test", "管理员", None, "admin").await.unwrap();
    let actor = t.actor(admin).await.unwrap();
    let rep = t.create_user("rep@kehu.test", "李娜", None, "sales_rep").await.unwrap();
    let link = t.password_link(&actor, rep, "https://crm.example.com").await.unwrap();
    let (port, got) = fake_smtp(false).await;
    let mailer =
        kehu_app::mail::Mailer::new(&format!("smtp://127.0.0.1:{port}"), "客户 CRM <crm@example.com>").unwrap();
    assert_eq!(t.deliver_mails(&mailer).await.unwrap(), 1);
    assert_eq!(t.deliver_mails(&mailer).await.unwrap(), 0, "never twice");
    let msgs = got.lock().unwrap().clone();
    assert_eq!(msgs.len(), 1);
    assert!(msgs[0].contains("To: rep@kehu.test"), "{}", msgs[0]);
    let mails = t.mails(&actor, 10).await.unwrap();
    assert!(mails[0].sent_at.is_some());
    let body = t.db.one(&kehu_db::Raw::new("SELECT body FROM mails", vec![])).await.unwrap().unwrap().string(0);
    assert_eq!(body, None, "the link is not kept once sent");
    assert!(link.starts_with("https://crm.example.com/password/reset/"));
    // A refusing server: the error is recorded, and retries stop after the limit.
    let other = t.create_user("x@kehu.test", "X", None, "sales_rep").await.unwrap();
    t.password_link(&actor, other, "https://crm.example.com").await.unwrap();
    let (port, _) = fake_smtp(true).await;
    let bad = kehu_app::mail::Mailer::new(&format!("smtp://127.0.0.1:{port}"), "crm@example.com").unwrap();
    for i in 0..kehu_app::mail::MAX_ATTEMPTS + 2 {
        assert_eq!(t.deliver_mails(&bad).await.unwrap(), 0);
        // A failed message waits (its lease is the backoff) before the next attempt.
        let m = &t.mails(&actor, 10).await.unwrap()[0];
        assert_eq!(m.attempts, (i + 1).min(kehu_app::mail::MAX_ATTEMPTS));
        assert_eq!(t.deliver_mails(&bad).await.unwrap(), 0);
        assert_eq!(t.mails(&actor, 10).await.unwrap()[0].attempts, m.attempts, "not before its backoff");
        t.db.write(&kehu_db::Raw::new("UPDATE mails SET lease_until = 1 WHERE sent_at IS NULL", vec![])).await.unwrap();
    }
    let m = &t.mails(&actor, 10).await.unwrap()[0];
    assert_eq!((m.sent_at, m.attempts), (None, kehu_app::mail::MAX_ATTEMPTS));
    assert!(m.last_error.as_deref().unwrap_or("").contains("550"), "{:?}", m.last_error);
    let bodies =
        t.db.one(&kehu_db::Raw::new("SELECT COUNT(*) FROM mails WHERE body IS NOT NULL", vec![])).await.unwrap();
    assert_eq!(bodies.and_then(|r| r.i64(0)), Some(0), "no link kept after giving up");
    // Without a mail server nothing is queued: the admin hands the link over instead.
    t.set_mail_enabled(false);
    let third = t.create_user("y@kehu.test", "Y", None, "sales_rep").await.unwrap();
    t.password_link(&actor, third, "https://crm.example.com").await.unwrap();
    assert_eq!(count(&t, "mails").await, 2);
    t.housekeeping().await.unwrap();
}
both!(delivers_queued_mail_once);
