//! The field editor: add a field of any type or edit one (labels, help, flags, default, select
//! options with colours and their order).

use super::*;

/// One row of the options editor.
pub struct ChoiceRow {
    pub key: String,
    pub zh: String,
    pub en: String,
    pub color: String,
    pub state: String,
    pub pos: usize,
}

#[derive(Template)]
#[template(path = "custom/field.html")]
struct FieldPage {
    shell: Shell,
    api: String,
    /// None when adding a field.
    field: Option<String>,
    ftype: &'static str,
    type_label: String,
    types: Vec<(&'static str, String)>,
    form: Form,
    choices: Vec<ChoiceRow>,
    colors: Vec<(&'static str, String)>,
    targets: Vec<(String, String)>,
}

impl FieldPage {
    fn has_choices(&self) -> bool {
        matches!(self.ftype, "select" | "multi_select")
    }
    fn on(&self, name: &str) -> bool {
        matches!(self.form.v(name), "on" | "true")
    }
    fn is_text(&self) -> bool {
        matches!(self.ftype, "text" | "long_text")
    }
    fn is_scaled(&self) -> bool {
        matches!(self.ftype, "decimal" | "percent")
    }
    fn known_color(&self, c: &str) -> bool {
        COLORS.contains(&c)
    }
}

fn choice_rows(choices: &[Choice], blanks: usize) -> Vec<ChoiceRow> {
    let mut rows: Vec<ChoiceRow> = choices
        .iter()
        .enumerate()
        .map(|(i, c)| ChoiceRow {
            key: c.key.clone(),
            zh: c.label.zh.clone(),
            en: c.label.en.clone(),
            color: c.color.clone(),
            state: if c.archived { "archived" } else { "active" }.into(),
            pos: i + 1,
        })
        .collect();
    let n = rows.len();
    for i in 0..blanks {
        rows.push(ChoiceRow {
            key: String::new(),
            zh: String::new(),
            en: String::new(),
            color: COLORS[(n + i + 4) % COLORS.len()].into(),
            state: "active".into(),
            pos: n + i + 1,
        });
    }
    rows
}

/// The options editor's rows as submitted (blank new rows left out), in their chosen order.
fn submitted_choices(p: &[(String, String)]) -> Vec<(ChoiceRow, bool)> {
    let keys = all(p, "choice_key");
    let zh = all(p, "choice_zh");
    let en = all(p, "choice_en");
    let color = all(p, "choice_color");
    let state = all(p, "choice_state");
    let pos = all(p, "choice_pos");
    let mut rows = Vec::new();
    for i in 0..keys.len() {
        let get = |v: &Vec<&str>| v.get(i).copied().unwrap_or("").to_string();
        let (k, z, e) = (get(&keys), get(&zh), get(&en));
        if k.is_empty() && z.is_empty() && e.is_empty() {
            continue;
        }
        let row = ChoiceRow {
            key: k,
            zh: z,
            en: e,
            color: get(&color),
            state: get(&state),
            pos: get(&pos).parse().unwrap_or(i + 1),
        };
        rows.push((row, false));
    }
    rows.sort_by_key(|(r, _)| r.pos);
    rows
}

/// Turn editor rows into choices: new rows get a key from their English (else Chinese-free)
/// label; rows marked "remove" are left out (the engine refuses if records use them).
fn to_choices(rows: &[(ChoiceRow, bool)]) -> Vec<Choice> {
    let mut used: Vec<String> = rows.iter().map(|(r, _)| r.key.clone()).filter(|k| !k.is_empty()).collect();
    let mut out = Vec::new();
    for (n, (r, _)) in rows.iter().enumerate() {
        if r.state == "remove" {
            continue;
        }
        let key = if r.key.is_empty() {
            let base =
                Some(derive_api_name(&r.en)).filter(|s| !s.is_empty()).unwrap_or_else(|| format!("opt{}", n + 1));
            let mut k = base.clone();
            let mut i = 2;
            while used.contains(&k) {
                k = format!("{base}_{i}");
                i += 1;
            }
            used.push(k.clone());
            k
        } else {
            r.key.clone()
        };
        // A label given in one language only serves both.
        let (en, zh) = match (r.en.is_empty(), r.zh.is_empty()) {
            (true, false) => (r.zh.clone(), r.zh.clone()),
            (false, true) => (r.en.clone(), r.en.clone()),
            _ => (r.en.clone(), r.zh.clone()),
        };
        out.push(Choice { key, label: Label::new(en, zh), color: r.color.clone(), archived: r.state == "archived" });
    }
    out
}

fn colors(st: &AppState, u: &UserCtx) -> Vec<(&'static str, String)> {
    COLORS.iter().map(|c| (*c, st.i18n.get(u.ctx.lang, &format!("custom-color-{c}"), &[]))).collect()
}

#[allow(clippy::too_many_arguments)]
async fn field_page(
    st: &AppState,
    u: &UserCtx,
    obj: &Arc<ObjectDef>,
    field: Option<&FieldDef>,
    ftype: FieldType,
    form: Form,
    choices: Vec<ChoiceRow>,
) -> WebResult {
    let lang = u.ctx.lang.code();
    let schema = st.app.schema().await?;
    let targets = schema.objects().iter().map(|o| (o.api_name.clone(), o.label.get(lang).to_string())).collect();
    let title = match field {
        Some(f) => f.label.get(lang).to_string(),
        None => st.i18n.get(u.ctx.lang, "custom-field-new", &[]),
    };
    let crumbs = [(obj.label.get(lang).to_string(), format!("/settings/objects/{}", obj.api_name))];
    render(&FieldPage {
        shell: shell(st, u, title, &crumbs).await,
        api: obj.api_name.clone(),
        field: field.map(|f| f.api_name.clone()),
        ftype: ftype.as_str(),
        type_label: type_name(st, u, ftype),
        types: FieldType::ALL.iter().map(|t| (t.as_str(), type_name(st, u, *t))).collect(),
        form,
        choices,
        colors: colors(st, u),
        targets,
    })
}

#[derive(Deserialize)]
pub struct TypeQuery {
    #[serde(default, rename = "type")]
    ftype: Option<String>,
}

/// `GET /settings/objects/{object}/fields/new?type=…`
pub async fn new_field(
    State(st): State<AppState>,
    u: UserCtx,
    Path(api): Path<String>,
    Query(q): Query<TypeQuery>,
) -> WebResult {
    need_admin(&u.actor)?;
    let schema = st.app.schema().await?;
    let obj = schema.object(&api)?.clone();
    let ftype = q.ftype.as_deref().and_then(FieldType::parse).unwrap_or(FieldType::Text);
    let searchable = if ftype.searchable_by_default() { "on" } else { "" };
    let form = Form::with(&[("in_form", "on"), ("filterable", "on"), ("searchable", searchable), ("currency", "CNY")]);
    field_page(&st, &u, &obj, None, ftype, form, choice_rows(&[], 3)).await
}

fn options_from(p: &[(String, String)], ftype: FieldType, base: &FieldOptions) -> Result<FieldOptions, AppError> {
    let mut o = base.clone();
    let num = |name: &str| -> Result<Option<u32>, AppError> {
        match first(p, name) {
            "" => Ok(None),
            s => s.parse().map(Some).map_err(|_| AppError::field(name, "field.invalid_number")),
        }
    };
    if matches!(ftype, FieldType::Select | FieldType::MultiSelect) {
        o.choices = to_choices(&submitted_choices(p));
    }
    if matches!(ftype, FieldType::Text | FieldType::LongText) {
        o.max_length = num("max_length")?;
    }
    if matches!(ftype, FieldType::Decimal | FieldType::Percent) {
        o.scale = num("scale")?.map(|n| n.min(255) as u8);
    }
    if ftype == FieldType::Currency {
        o.currency = Some(first(p, "currency").to_uppercase()).filter(|s| !s.is_empty());
    }
    Ok(o)
}

fn help_of(p: &[(String, String)]) -> Option<Label> {
    let h = label_of(p, "help");
    (!h.en.is_empty() || !h.zh.is_empty()).then_some(h)
}

fn default_of(p: &[(String, String)]) -> Option<Json> {
    Some(first(p, "default")).filter(|s| !s.is_empty()).map(|s| Json::String(s.to_string()))
}

/// `POST /settings/objects/{object}/fields` — add a field.
pub async fn add_field(
    State(st): State<AppState>,
    u: UserCtx,
    Path(api): Path<String>,
    axum::Form(p): Pairs,
) -> WebResult {
    need_admin(&u.actor)?;
    let schema = st.app.schema().await?;
    let obj = schema.object(&api)?.clone();
    let ftype = FieldType::parse(first(&p, "type")).ok_or_else(|| AppError::field("type", "meta.invalid_type"))?;
    let label = label_of(&p, "label");
    let api_name = match first(&p, "api_name") {
        "" => derive_api_name(&label.en),
        a => a.to_string(),
    };
    let res = async {
        let options = options_from(&p, ftype, &FieldOptions::default())?;
        let req = NewField {
            api_name: api_name.clone(),
            ftype,
            label,
            help: help_of(&p),
            required: checked(&p, "required"),
            unique: checked(&p, "unique"),
            filterable: checked(&p, "filterable"),
            searchable: Some(checked(&p, "searchable")),
            default: default_of(&p),
            options,
            target_object: Some(first(&p, "target_object").to_string()).filter(|s| !s.is_empty()),
            position: None,
            in_form: Some(checked(&p, "in_form")),
            in_list: checked(&p, "in_list"),
        };
        st.app.add_field(&u.actor, &api, req).await
    }
    .await;
    match res {
        Ok(_) => Ok(redirect_flash(&u.ctx, &format!("/settings/objects/{api}"), "flash-custom-field-added")),
        Err(e) if e.kind != ErrorKind::Forbidden => {
            let mut form = Form { values: values_of(&p), ..Default::default() }.fail(&st.i18n, u.ctx.lang, &e);
            form.values.insert("api_name".into(), api_name);
            let rows = submitted_choices(&p).into_iter().map(|(r, _)| r).collect();
            fail_status(field_page(&st, &u, &obj, None, ftype, form, rows).await, &e)
        }
        Err(e) => Err(e.into()),
    }
}

fn field_form(f: &FieldDef, schema_targets: Option<String>) -> Form {
    let on = |b: bool| if b { "on" } else { "" };
    let help = f.help.clone().unwrap_or_default();
    let default = match &f.default {
        Some(Json::String(s)) => s.clone(),
        Some(v) => v.to_string(),
        None => String::new(),
    };
    let max = f.options.max_length.map(|n| n.to_string()).unwrap_or_default();
    let scale = f.options.scale.map(|n| n.to_string()).unwrap_or_default();
    Form::with(&[
        ("api_name", &f.api_name),
        ("label_en", &f.label.en),
        ("label_zh", &f.label.zh),
        ("help_en", &help.en),
        ("help_zh", &help.zh),
        ("required", on(f.required)),
        ("unique", on(f.unique)),
        ("filterable", on(f.filterable)),
        ("searchable", on(f.searchable)),
        ("in_form", on(f.in_form)),
        ("in_list", on(f.in_list)),
        ("default", &default),
        ("max_length", &max),
        ("scale", &scale),
        ("currency", f.options.currency.as_deref().unwrap_or("")),
        ("target_object", schema_targets.as_deref().unwrap_or("")),
    ])
}

async fn editable_field(
    st: &AppState,
    u: &UserCtx,
    api: &str,
    field: &str,
) -> Result<(Arc<ObjectDef>, Arc<FieldDef>), AppError> {
    need_admin(&u.actor)?;
    let schema = st.app.schema().await?;
    let obj = schema.object(api)?.clone();
    let f =
        obj.field_any(field).filter(|f| !f.builtin).cloned().ok_or_else(|| AppError::not_found("field.not_found"))?;
    Ok((obj, f))
}

/// `GET /settings/objects/{object}/fields/{field}`
pub async fn edit_field(
    State(st): State<AppState>,
    u: UserCtx,
    Path((api, field)): Path<(String, String)>,
) -> WebResult {
    let (obj, f) = editable_field(&st, &u, &api, &field).await?;
    let schema = st.app.schema().await?;
    let target = f.options.target.and_then(|t| schema.object_by_id(t)).map(|o| o.api_name.clone());
    let form = field_form(&f, target);
    field_page(&st, &u, &obj, Some(&f), f.ftype, form, choice_rows(&f.options.choices, 2)).await
}

/// `POST /settings/objects/{object}/fields/{field}` — save a field.
pub async fn save_field(
    State(st): State<AppState>,
    u: UserCtx,
    Path((api, field)): Path<(String, String)>,
    axum::Form(p): Pairs,
) -> WebResult {
    let (obj, f) = editable_field(&st, &u, &api, &field).await?;
    let res = async {
        let options = options_from(&p, f.ftype, &f.options)?;
        let patch = FieldPatch {
            api_name: Some(first(&p, "api_name").to_string()),
            label: Some(label_of(&p, "label")),
            help: help_of(&p),
            required: Some(checked(&p, "required")),
            unique: Some(checked(&p, "unique")),
            filterable: Some(checked(&p, "filterable")),
            searchable: Some(checked(&p, "searchable")),
            default: Some(default_of(&p).unwrap_or(Json::Null)),
            choices: matches!(f.ftype, FieldType::Select | FieldType::MultiSelect).then_some(options.choices),
            max_length: options.max_length,
            position: None,
            archived: None,
            in_form: Some(checked(&p, "in_form")),
            in_list: Some(checked(&p, "in_list")),
        };
        st.app.update_field(&u.actor, &api, &field, patch).await
    }
    .await;
    match res {
        Ok(_) => Ok(redirect_flash(&u.ctx, &format!("/settings/objects/{api}"), "flash-saved")),
        Err(e) if e.kind != ErrorKind::Forbidden => {
            let form = Form { values: values_of(&p), ..Default::default() }.fail(&st.i18n, u.ctx.lang, &e);
            let rows = submitted_choices(&p).into_iter().map(|(r, _)| r).collect();
            fail_status(field_page(&st, &u, &obj, Some(&f), f.ftype, form, rows).await, &e)
        }
        Err(e) => Err(e.into()),
    }
}
