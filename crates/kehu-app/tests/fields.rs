//! Metadata: objects are real tables, fields real columns; every field type round-trips;
//! renaming is metadata only; archiving hides a field and keeps its data.

use crate::support::*;
use kehu_app::metadata::{FieldPatch, NewField, NewObject};
use kehu_core::meta::{FieldType, Label};
use serde_json::{json, Value as Json};

fn new_field(api: &str, t: FieldType, extra: Json) -> NewField {
    let mut base = json!({"api_name": api, "type": t.as_str(), "label": {"en": api, "zh-CN": api}});
    if let (Some(b), Some(e)) = (base.as_object_mut(), extra.as_object()) {
        b.extend(e.clone());
    }
    serde_json::from_value(base).expect("field json")
}

async fn custom_object(t: &TestApp) -> String {
    let o = t
        .create_object(
            &system(),
            NewObject {
                api_name: "project".into(),
                label: Label::new("Project", "项目"),
                plural: Label::new("Projects", "项目"),
                icon: None,
            },
        )
        .await
        .unwrap();
    o.table.clone()
}

async fn objects_and_fields_are_tables_and_columns(t: TestApp) {
    let table = custom_object(&t).await;
    let cols = columns(&t, &table).await;
    for c in ["id", "owner_id", "created_at", "created_by", "updated_at", "updated_by", "version", "deleted_at"] {
        assert!(cols.contains(&c.to_string()), "{c} in {cols:?}");
    }
    let f = t.add_field(&system(), "project", new_field("budget", FieldType::Currency, json!({}))).await.unwrap();
    let cols = columns(&t, &table).await;
    assert!(cols.contains(&f.column) && cols.contains(&format!("{}_cur", f.column)), "{cols:?}");
    assert!(f.column.starts_with("f_") && !f.column.contains("budget"), "column names come from ids");
    // Same api name twice, reserved and malformed names are refused.
    let e = t.add_field(&system(), "project", new_field("budget", FieldType::Text, json!({}))).await.unwrap_err();
    assert_eq!(e.fields[0].code, "meta.api_name_taken");
    let e = t.add_field(&system(), "project", new_field("version", FieldType::Text, json!({}))).await.unwrap_err();
    assert_eq!(e.fields[0].code, "meta.reserved_api_name");
    let e =
        t.add_field(&system(), "project", new_field("Bad Name; DROP", FieldType::Text, json!({}))).await.unwrap_err();
    assert_eq!(e.fields[0].code, "meta.invalid_api_name");
    let e = t.add_field(&system(), "project", new_field("pick", FieldType::Select, json!({}))).await.unwrap_err();
    assert_eq!(e.fields[0].code, "meta.choices_required");
    let o =
        NewObject { api_name: "project".into(), label: Label::new("P", "P"), plural: Label::new("P", "P"), icon: None };
    assert_eq!(t.create_object(&system(), o).await.unwrap_err().fields[0].code, "meta.api_name_taken");
}
both!(objects_and_fields_are_tables_and_columns);

async fn every_field_type_round_trips(t: TestApp) {
    custom_object(&t).await;
    let a = system();
    let choices = json!({"options": {"choices": [
        {"key": "a", "label": {"en": "Alpha", "zh-CN": "甲"}, "color": "red"},
        {"key": "b", "label": {"en": "Beta", "zh-CN": "乙"}, "color": "blue"}]}});
    let specs: Vec<(&str, FieldType, Json, Json, Json)> = vec![
        ("t_text", FieldType::Text, json!({}), json!("  你好 world  "), json!("你好 world")),
        ("t_long", FieldType::LongText, json!({}), json!("line1\nline2"), json!("line1\nline2")),
        ("t_int", FieldType::Integer, json!({}), json!(-42), json!(-42)),
        ("t_dec", FieldType::Decimal, json!({}), json!("1234.5678"), json!("1234.5678")),
        (
            "t_cur",
            FieldType::Currency,
            json!({}),
            json!({"amount": "99.95", "currency": "USD"}),
            json!({"minor": 9995, "currency": "USD", "amount": "99.95"}),
        ),
        ("t_pct", FieldType::Percent, json!({}), json!(12.5), json!("12.5")),
        ("t_bool", FieldType::Boolean, json!({}), json!(true), json!(true)),
        ("t_date", FieldType::Date, json!({}), json!("2026-02-28"), json!("2026-02-28")),
        ("t_dt", FieldType::DateTime, json!({}), json!("2026-02-28T08:00:00+08:00"), json!("2026-02-28T00:00:00Z")),
        ("t_email", FieldType::Email, json!({}), json!("Li.Na@Example.CN"), json!("li.na@example.cn")),
        ("t_phone", FieldType::Phone, json!({}), json!("021-6555 1234"), json!("02165551234")),
        ("t_url", FieldType::Url, json!({}), json!("kehu.example.com/x"), json!("https://kehu.example.com/x")),
        ("t_sel", FieldType::Select, choices.clone(), json!("乙"), json!("b")),
        ("t_multi", FieldType::MultiSelect, choices, json!(["b", "a", "b"]), json!(["b", "a"])),
        ("t_tags", FieldType::Tags, json!({}), json!(["VIP", "老客户"]), json!(["VIP", "老客户"])),
        ("t_user", FieldType::User, json!({}), Json::Null, Json::Null),
        ("t_rel", FieldType::Relation, json!({"target_object": "company"}), Json::Null, Json::Null),
    ];
    for (api, ty, extra, _, _) in &specs {
        t.add_field(&a, "project", new_field(api, *ty, extra.clone())).await.unwrap();
    }
    let user = t.create_user("u@kehu.test", "U", None, "sales_rep").await.unwrap();
    let company = t.create(&a, "company", &obj(json!({"name": "客户科技"}))).await.unwrap();
    let mut input = serde_json::Map::new();
    input.insert("name".into(), json!("全类型"));
    for (api, _, _, v, _) in &specs {
        input.insert(api.to_string(), v.clone());
    }
    input.insert("t_user".into(), json!(user.to_string()));
    input.insert("t_rel".into(), json!(company.id.to_string()));
    let r = t.create(&a, "project", &input).await.unwrap();
    let got = t.get(&a, "project", r.id).await.unwrap();
    for (api, _, _, _, want) in &specs {
        if !want.is_null() {
            assert_eq!(got.get(api), want, "{api}");
        }
    }
    assert_eq!(got.get("t_user"), &json!(user.to_string()));
    assert_eq!(got.get("t_rel"), &json!(company.id.to_string()));
    // Clearing every field with null round-trips too.
    let mut clear = serde_json::Map::new();
    for (api, _, _, _, _) in &specs {
        clear.insert(api.to_string(), Json::Null);
    }
    let cleared = t.update(&a, "project", r.id, 1, &clear).await.unwrap();
    for (api, _, _, _, _) in &specs {
        assert_eq!(cleared.get(api), &Json::Null, "{api}");
    }
    // Reverse relations: the company knows which fields point at it.
    let schema = t.schema().await.unwrap();
    let company_obj = schema.object("company").unwrap();
    let rev: Vec<String> = schema
        .reverse_relations(company_obj.id)
        .iter()
        .map(|(o, f)| format!("{}.{}", o.api_name, f.api_name))
        .collect();
    assert!(rev.contains(&"project.t_rel".to_string()) && rev.contains(&"contact.company".to_string()), "{rev:?}");
}
both!(every_field_type_round_trips);

async fn rename_and_archive(t: TestApp) {
    let a = system();
    let c = t.create(&a, "contact", &obj(json!({"name": "赵敏", "wechat": "zhaomin88"}))).await.unwrap();
    let table_cols = columns(&t, "o_contact").await;
    let f = t
        .update_field(&a, "contact", "wechat", FieldPatch { api_name: Some("weixin".into()), ..Default::default() })
        .await
        .unwrap();
    assert_eq!(f.column, "f_wechat", "renaming keeps the column");
    assert_eq!(columns(&t, "o_contact").await, table_cols);
    let got = t.get(&a, "contact", c.id).await.unwrap();
    assert_eq!(got.get("weixin"), &json!("zhaomin88"));
    assert!(got.fields.get("wechat").is_none());
    t.update_field(&a, "contact", "weixin", FieldPatch { archived: Some(true), ..Default::default() }).await.unwrap();
    let got = t.get(&a, "contact", c.id).await.unwrap();
    assert!(got.fields.get("weixin").is_none(), "archived fields are hidden");
    let e = t.update(&a, "contact", c.id, got.version, &obj(json!({"weixin": "x"}))).await.unwrap_err();
    assert_eq!(e.fields[0].code, "field.unknown");
    t.update_field(&a, "contact", "weixin", FieldPatch { archived: Some(false), ..Default::default() }).await.unwrap();
    assert_eq!(
        t.get(&a, "contact", c.id).await.unwrap().get("weixin"),
        &json!("zhaomin88"),
        "data kept while archived"
    );
    // Removing a select option in use is refused; adding one works.
    let e = t
        .update_field(&a, "contact", "lifecycle_stage", FieldPatch { choices: Some(vec![]), ..Default::default() })
        .await
        .unwrap_err();
    assert_eq!(e.fields[0].code, "meta.choice_in_use");
}
both!(rename_and_archive);

async fn metadata_changes_need_the_permission_and_keep_data_consistent(t: TestApp) {
    let rep_id = t.create_user("rep@kehu.test", "Rep", None, "sales_rep").await.unwrap();
    let rep = t.actor(rep_id).await.unwrap();
    let o =
        NewObject { api_name: "deal_x".into(), label: Label::new("D", "D"), plural: Label::new("D", "D"), icon: None };
    assert_eq!(t.create_object(&rep, o).await.unwrap_err().code, "permission.denied");
    let e = t.add_field(&rep, "contact", new_field("level", FieldType::Text, json!({}))).await.unwrap_err();
    assert_eq!(e.code, "permission.denied");
    let e =
        t.update_field(&rep, "contact", "name", FieldPatch { label: Some(Label::new("x", "x")), ..Default::default() });
    assert_eq!(e.await.unwrap_err().code, "permission.denied");
    assert_eq!(count(&t, "meta_fields WHERE api_name = 'level'").await, 0);
    // Making a field unique fails while values repeat, and changes nothing; then succeeds.
    let a = system();
    let c1 = t.create(&a, "contact", &obj(json!({"name": "A", "wechat": "same"}))).await.unwrap();
    t.create(&a, "contact", &obj(json!({"name": "B", "wechat": "same"}))).await.unwrap();
    let e = t
        .update_field(&a, "contact", "wechat", FieldPatch { unique: Some(true), ..Default::default() })
        .await
        .unwrap_err();
    assert_eq!(e.fields[0].code, "meta.values_not_unique");
    assert!(!t.schema().await.unwrap().object("contact").unwrap().field("wechat").unwrap().unique);
    t.update(&a, "contact", c1.id, 1, &obj(json!({"wechat": "other"}))).await.unwrap();
    t.update_field(&a, "contact", "wechat", FieldPatch { unique: Some(true), ..Default::default() }).await.unwrap();
    let e = t.create(&a, "contact", &obj(json!({"name": "C", "wechat": "same"}))).await.unwrap_err();
    assert_eq!((e.fields[0].field.as_str(), e.fields[0].code.as_str()), ("wechat", "field.not_unique"));
    // A required field with a default fills new records; its default must be a valid value.
    let e = t
        .add_field(&a, "contact", new_field("tier", FieldType::Integer, json!({"default": "high"})))
        .await
        .unwrap_err();
    assert_eq!(e.fields[0].code, "field.invalid_integer");
    t.add_field(&a, "contact", new_field("tier", FieldType::Integer, json!({"default": 3, "required": true})))
        .await
        .unwrap();
    let d = t.create(&a, "contact", &obj(json!({"name": "D"}))).await.unwrap();
    assert_eq!(d.get("tier"), &json!(3));
    // The new field is filterable and sortable at once.
    let req = kehu_app::ListRequest {
        filter: Some(json!({"field": "tier", "op": "eq", "value": 3})),
        sort: Some(json!("-tier")),
        ..Default::default()
    };
    assert_eq!(t.list(&a, "contact", &req).await.unwrap().records.len(), 1);
}
both!(metadata_changes_need_the_permission_and_keep_data_consistent);
