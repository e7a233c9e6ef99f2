//! Outgoing e-mail: messages are queued in the `mails` table inside the transaction that
//! causes them (a reset request, an invitation) and delivered by the mail worker. Texts are in
//! the recipient's language.

use crate::Result;
use kehu_core::{new_id, now_micros};
use kehu_db::Tx;
use sea_query::{Alias, Query};

/// Queue one message.
pub(crate) async fn queue(tx: &mut Tx, to: &str, subject: &str, body: &str, kind: &str) -> Result<()> {
    let q = Query::insert()
        .into_table(Alias::new("mails"))
        .columns(["id", "to_addr", "subject", "body", "kind", "created_at", "attempts"].map(Alias::new))
        .values_panic([
            new_id().into(),
            to.into(),
            subject.into(),
            body.into(),
            kind.into(),
            now_micros().into(),
            0i64.into(),
        ])
        .to_owned();
    tx.exec(&q).await?;
    Ok(())
}

pub(crate) fn reset_mail(locale: &str, name: &str, link: &str) -> (String, String) {
    if locale == "en" {
        (
            "Reset your Kehu password".into(),
            format!(
                "Hello {name},\n\nSomeone asked to reset the password of your Kehu account. Open this link within an hour to choose a new one:\n\n{link}\n\nIf it was not you, ignore this message; your password stays as it is.\n"
            ),
        )
    } else {
        (
            "重置您的客户 CRM 密码".into(),
            format!(
                "{name}，您好：\n\n有人请求重置您的客户 CRM 账号密码。请在一小时内打开以下链接设置新密码：\n\n{link}\n\n如果不是您本人操作，请忽略此邮件，您的密码不会改变。\n"
            ),
        )
    }
}

/// To administrators when a webhook's deliveries gave up.
pub(crate) fn webhook_failing_mail(locale: &str, url: &str, error: &str, link: &str) -> (String, String) {
    if locale == "en" {
        (
            "A Kehu webhook is failing".into(),
            format!(
                "Deliveries to {url} gave up after two days of retries (last error: {error}).\n\nThe delivery log shows every attempt; once the receiver works again, send the failed deliveries again from there:\n\n{link}\n"
            ),
        )
    } else {
        (
            "客户 CRM 的 Webhook 发送失败".into(),
            format!(
                "发往 {url} 的推送在两天的重试后仍然失败（最后的错误：{error}）。\n\n发送记录里有每一次尝试；接收方恢复后，可在那里重发全部失败的推送：\n\n{link}\n"
            ),
        )
    }
}

pub(crate) fn invite_mail(locale: &str, name: &str, org: &str, link: &str) -> (String, String) {
    if locale == "en" {
        (
            format!("You are invited to {org} on Kehu"),
            format!("Hello {name},\n\nYou have an account at {org}'s Kehu CRM. Open this link within seven days to set your password:\n\n{link}\n"),
        )
    } else {
        (
            format!("邀请您加入 {org} 的客户 CRM"),
            format!("{name}，您好：\n\n您在 {org} 的客户 CRM 中有了账号。请在七天内打开以下链接设置密码：\n\n{link}\n"),
        )
    }
}

/// Delivers queued mail over SMTP (`smtp://host:port` plain, `smtp://…?tls=required`
/// STARTTLS, `smtps://user:pass@host:465` implicit TLS; rustls, no OpenSSL).
pub struct Mailer {
    transport: lettre::AsyncSmtpTransport<lettre::Tokio1Executor>,
    from: lettre::message::Mailbox,
}

/// Attempts before a message is given up.
pub const MAX_ATTEMPTS: i64 = 5;

/// The least lease of a message being sent: longer than the SMTP timeout (20 s), so a slow
/// server's message is never taken by a second server while the first still sends it.
const MAIL_LEASE: i64 = 60_000_000;

/// A queued message, read by column name.
struct Queued {
    id: kehu_core::Uuid,
    to: String,
    subject: String,
    body: Option<String>,
    attempts: i64,
}

impl kehu_db::FromRow for Queued {
    fn from_row(r: &kehu_db::NamedRow) -> kehu_db::conn::DbResult<Self> {
        Ok(Queued {
            id: r.req_uuid("id")?,
            to: r.req_string("to_addr")?,
            subject: r.req_string("subject")?,
            body: r.string("body"),
            attempts: r.req_i64("attempts")?,
        })
    }
}

/// The mail pump: sends what is queued when a mail server is configured.
pub(crate) const PUMP: crate::work::Pump = crate::work::Pump { name: "mail", tick: pump_tick };

fn pump_tick(app: &crate::App) -> crate::work::BoxFut<'_, Result<usize>> {
    Box::pin(async move {
        match app.mailer() {
            Some(m) => app.deliver_mails(&m).await,
            None => Ok(0),
        }
    })
}

impl Mailer {
    pub fn new(url: &str, from: &str) -> Result<Mailer> {
        let transport = lettre::AsyncSmtpTransport::<lettre::Tokio1Executor>::from_url(url)
            .map_err(|e| kehu_core::AppError::invalid("mail.bad_config").with_detail(e.to_string()))?
            .timeout(Some(std::time::Duration::from_secs(20)))
            .build();
        let from =
            from.parse().map_err(|_| kehu_core::AppError::invalid("mail.bad_config").with_detail("mail_from"))?;
        Ok(Mailer { transport, from })
    }
}

impl crate::App {
    /// Send up to 20 queued messages; returns how many went out. Each message is claimed by
    /// bumping its attempt counter and taking a lease (`lease_until`) first, so while one
    /// server talks to a slow SMTP server no other server sends the same message; a message
    /// whose server died while sending is sent again once the lease ran out (at least once).
    pub async fn deliver_mails(&self, m: &Mailer) -> Result<usize> {
        use kehu_db::records::col;
        use lettre::AsyncTransport;
        let q = Query::select()
            .columns(["id", "to_addr", "subject", "body", "attempts"].map(Alias::new))
            .from(Alias::new("mails"))
            .and_where(sea_query::Expr::col(Alias::new("sent_at")).is_null())
            .and_where(col("attempts").lt(MAX_ATTEMPTS))
            .cond_where(
                sea_query::Cond::any()
                    .add(sea_query::Expr::col(Alias::new("lease_until")).is_null())
                    .add(col("lease_until").lt(kehu_core::now_micros())),
            )
            .order_by(Alias::new("created_at"), sea_query::Order::Asc)
            .limit(20)
            .to_owned();
        let mut sent = 0;
        let queued: Vec<Queued> = self.db.rows(&q).await?;
        for Queued { id, to, subject, body, attempts } in queued {
            let claim = Query::update()
                .table(Alias::new("mails"))
                .value(Alias::new("attempts"), attempts + 1)
                .value(Alias::new("lease_until"), kehu_core::now_micros() + self.lease_micros().max(MAIL_LEASE))
                .and_where(col("id").eq(id))
                .and_where(col("attempts").eq(attempts))
                .and_where(sea_query::Expr::col(Alias::new("sent_at")).is_null())
                .to_owned();
            if self.db.write(&claim).await? != 1 {
                continue;
            }
            let outcome = match to.parse::<lettre::message::Mailbox>() {
                Err(e) => Err(format!("bad address: {e}")),
                Ok(rcpt) => match lettre::Message::builder()
                    .from(m.from.clone())
                    .to(rcpt)
                    .subject(subject)
                    .header(lettre::message::header::ContentType::TEXT_PLAIN)
                    .body(body.unwrap_or_default())
                {
                    Err(e) => Err(e.to_string()),
                    Ok(msg) => m.transport.send(msg).await.map(|_| ()).map_err(|e| e.to_string()),
                },
            };
            let now = kehu_core::now_micros();
            let done = match &outcome {
                Ok(()) => Query::update()
                    .table(Alias::new("mails"))
                    .values([
                        (Alias::new("sent_at"), now.into()),
                        (Alias::new("body"), None::<String>.into()),
                        (Alias::new("last_error"), None::<String>.into()),
                    ])
                    .and_where(col("id").eq(id))
                    .to_owned(),
                Err(e) => {
                    // The next attempt after a backoff (30 s, 2 min, 8 min, 32 min).
                    let wait = 30_000_000i64 << (2 * attempts.clamp(0, 5));
                    let mut q = Query::update();
                    q.table(Alias::new("mails"))
                        .value(Alias::new("last_error"), e.chars().take(500).collect::<String>())
                        .value(Alias::new("lease_until"), now + wait)
                        .and_where(col("id").eq(id));
                    if attempts + 1 >= MAX_ATTEMPTS {
                        // Given up: the link it carried is not kept.
                        q.value(Alias::new("body"), None::<String>);
                    }
                    q.to_owned()
                }
            };
            self.db.write(&done).await?;
            match outcome {
                Ok(()) => sent += 1,
                Err(e) => tracing::warn!(mail = %id, error = %e, "mail not delivered"),
            }
        }
        Ok(sent)
    }
}
