//! Import pages (issue #5): upload → mapping → dry run → start → progress → report (failed
//! rows, undo), and the history of imports per object.

use crate::i18n::{I18n, Lang};
use kehu_app::import::RowIssue;

/// A row problem in the user's language: the column, then the reason.
pub fn issue_text(i18n: &I18n, lang: Lang, i: &RowIssue) -> String {
    let reason = match i.first_row {
        Some(first) => i18n.get(lang, "import-duplicate-first-seen", &[("row", &first.to_string())]),
        None => i18n.error(lang, &i.code),
    };
    if i.column.is_empty() {
        reason
    } else {
        format!("{}: {reason}", i.column)
    }
}

mod mapping;
mod report;

pub use mapping::{check, check_again, check_progress, delete_mapping, map, mapping_page};
pub use report::{failed_csv, history, progress, show, start, undo};

use crate::ctx::{redirect_for, UserCtx};
use crate::error::{WebError, WebResult};
use crate::shell::{render, Shell};
use crate::AppState;
use askama::Template;
use axum::extract::{Multipart, Path, State};
use kehu_core::meta::ObjectDef;
use kehu_core::perm::Action;
use kehu_core::AppError;

/// Largest upload through the web page (the app has its own limits per format).
pub const MAX_UPLOAD: usize = 100 * 1024 * 1024;

/// "Import contacts" / "导入联系人"
pub(crate) fn title(st: &AppState, u: &UserCtx, obj: &ObjectDef) -> String {
    st.i18n.get(u.ctx.lang, "import-title", &[("object", obj.plural.get(u.ctx.lang.code()))])
}

/// The shell of an import page: breadcrumbs back to the object's list.
pub(crate) async fn shell(st: &AppState, u: &UserCtx, obj: &ObjectDef, title: String) -> Shell {
    let lang = u.ctx.lang.code();
    Shell::new(st, &u.ctx, &u.session, &u.actor, title.clone())
        .await
        .crumb(obj.plural.get(lang).to_string(), Some(&format!("/o/{}", obj.api_name)))
        .crumb(title, None)
}

#[derive(Template)]
#[template(path = "import/upload.html")]
struct UploadPage {
    shell: Shell,
    object: String,
    max_mb: usize,
}

/// `GET /o/{object}/import` — choose a file.
pub async fn upload_page(State(st): State<AppState>, u: UserCtx, Path(object): Path<String>) -> WebResult {
    let schema = st.app.schema().await?;
    let obj = schema.object(&object)?.clone();
    if u.actor.check(&obj, Action::Create).is_err() {
        u.actor.check(&obj, Action::Update)?;
    }
    let t = title(&st, &u, &obj);
    let shell = shell(&st, &u, &obj, t).await;
    render(&UploadPage { shell, object, max_mb: MAX_UPLOAD / 1024 / 1024 })
}

/// `POST /o/{object}/import` (multipart: `file`, optional `sheet`) — read and keep the file,
/// then go to the mapping page.
pub async fn upload(
    State(st): State<AppState>,
    u: UserCtx,
    Path(object): Path<String>,
    mut mp: Multipart,
) -> WebResult {
    let too_large = || WebError(AppError::invalid("import.file_too_large"));
    let (mut name, mut bytes, mut sheet) = (String::new(), Vec::new(), None);
    while let Some(field) = mp.next_field().await.map_err(|_| too_large())? {
        match field.name() {
            Some("file") => {
                name = field.file_name().unwrap_or("upload.csv").to_string();
                bytes = field.bytes().await.map_err(|_| too_large())?.to_vec();
            }
            Some("sheet") => {
                let s = field.text().await.map_err(|_| too_large())?;
                sheet = Some(s.trim().to_string()).filter(|s| !s.is_empty());
            }
            _ => {}
        }
    }
    if bytes.is_empty() {
        return Err(WebError(AppError::invalid("import.empty_file")));
    }
    let id = st.app.import_upload(&u.actor, &object, &name, &bytes, sheet.as_deref()).await?;
    Ok(redirect_for(&u.ctx, &format!("/imports/{id}")))
}
