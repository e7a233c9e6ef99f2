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
