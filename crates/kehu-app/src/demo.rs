//! `kehu demo --contacts N`: a realistic data set — a sales organisation in a team tree,
//! companies, and contacts with Chinese and English names, e-mails, phones, cities, tags and
//! owners — written through the one write path (audit, outbox and search included), in
//! batches of one transaction each.

use crate::{App, Result};
use kehu_core::perm::Actor;
use kehu_core::Uuid;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Map, Value as Json};

const SURNAMES: &[(&str, &str)] = &[
    ("王", "wang"),
    ("李", "li"),
    ("张", "zhang"),
    ("刘", "liu"),
    ("陈", "chen"),
    ("杨", "yang"),
    ("黄", "huang"),
    ("赵", "zhao"),
    ("吴", "wu"),
    ("周", "zhou"),
    ("徐", "xu"),
    ("孙", "sun"),
    ("马", "ma"),
    ("朱", "zhu"),
    ("胡", "hu"),
    ("郭", "guo"),
    ("何", "he"),
    ("高", "gao"),
    ("林", "lin"),
    ("罗", "luo"),
    ("郑", "zheng"),
    ("梁", "liang"),
    ("谢", "xie"),
    ("宋", "song"),
    ("唐", "tang"),
    ("许", "xu"),
    ("韩", "han"),
    ("冯", "feng"),
    ("邓", "deng"),
    ("曹", "cao"),
    ("彭", "peng"),
    ("曾", "zeng"),
    ("肖", "xiao"),
    ("田", "tian"),
    ("董", "dong"),
    ("袁", "yuan"),
    ("潘", "pan"),
    ("于", "yu"),
    ("蒋", "jiang"),
    ("蔡", "cai"),
    ("余", "yu"),
    ("杜", "du"),
    ("叶", "ye"),
    ("程", "cheng"),
    ("苏", "su"),
    ("魏", "wei"),
    ("吕", "lv"),
    ("丁", "ding"),
    ("任", "ren"),
    ("沈", "shen"),
    ("姚", "yao"),
    ("卢", "lu"),
    ("姜", "jiang"),
    ("崔", "cui"),
    ("钟", "zhong"),
    ("谭", "tan"),
    ("陆", "lu"),
    ("汪", "wang"),
    ("范", "fan"),
    ("金", "jin"),
    ("欧阳", "ouyang"),
    ("司马", "sima"),
];
const GIVEN: &[(&str, &str)] = &[
    ("伟", "wei"),
    ("芳", "fang"),
    ("娜", "na"),
    ("敏", "min"),
    ("静", "jing"),
    ("丽", "li"),
    ("强", "qiang"),
    ("磊", "lei"),
    ("军", "jun"),
    ("洋", "yang"),
    ("勇", "yong"),
    ("艳", "yan"),
    ("杰", "jie"),
    ("娟", "juan"),
    ("涛", "tao"),
    ("明", "ming"),
    ("超", "chao"),
    ("秀英", "xiuying"),
    ("霞", "xia"),
    ("平", "ping"),
    ("刚", "gang"),
    ("桂英", "guiying"),
    ("建华", "jianhua"),
    ("晓东", "xiaodong"),
    ("婷婷", "tingting"),
    ("子涵", "zihan"),
    ("浩然", "haoran"),
    ("欣怡", "xinyi"),
    ("宇航", "yuhang"),
    ("思远", "siyuan"),
    ("雨桐", "yutong"),
    ("志强", "zhiqiang"),
    ("海燕", "haiyan"),
    ("文博", "wenbo"),
    ("嘉怡", "jiayi"),
    ("俊杰", "junjie"),
    ("梓萱", "zixuan"),
    ("建国", "jianguo"),
    ("晨", "chen"),
    ("鹏", "peng"),
];
const EN_FIRST: &[&str] = &[
    "James",
    "Mary",
    "John",
    "Patricia",
    "Robert",
    "Jennifer",
    "Michael",
    "Linda",
    "David",
    "Elizabeth",
    "William",
    "Susan",
    "Richard",
    "Jessica",
    "Thomas",
    "Sarah",
    "Daniel",
    "Karen",
    "Emma",
    "Oliver",
    "Sophia",
    "Lucas",
];
const EN_LAST: &[&str] = &[
    "Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Wilson", "Anderson", "Taylor",
    "Thomas", "Moore", "Martin", "Lee", "Walker", "Hall", "Young", "King", "Wright", "Scott", "Green",
];
/// (city, province)
pub const CITIES: &[(&str, &str)] = &[
    ("上海", "上海"),
    ("北京", "北京"),
    ("深圳", "广东"),
    ("广州", "广东"),
    ("杭州", "浙江"),
    ("成都", "四川"),
    ("武汉", "湖北"),
    ("南京", "江苏"),
    ("苏州", "江苏"),
    ("西安", "陕西"),
    ("重庆", "重庆"),
    ("天津", "天津"),
    ("长沙", "湖南"),
    ("郑州", "河南"),
    ("青岛", "山东"),
    ("厦门", "福建"),
    ("宁波", "浙江"),
    ("合肥", "安徽"),
    ("沈阳", "辽宁"),
    ("昆明", "云南"),
];
const CO_WORDS: &[&str] = &[
    "华信", "恒通", "博远", "汇智", "鼎盛", "腾飞", "中科", "新元", "云途", "星河", "天成", "金桥", "瑞丰", "海纳",
    "智联", "东方", "宏图", "嘉禾", "启明", "安泰",
];
const CO_KIND: &[&str] = &["科技", "贸易", "制造", "信息技术", "电子", "咨询", "物流", "医疗器械", "教育科技", "食品"];
const EN_CO: &[&str] =
    &["Northwind", "Contoso", "Fabrikam", "Globex", "Initech", "Umbrella", "Stark", "Wayne", "Acme", "Tailspin"];
const TAGS: &[&str] = &["vip", "老客户", "重点跟进", "展会", "转介绍", "高意向", "key account", "渠道", "复购"];
const TITLES: &[&str] =
    &["总经理", "采购经理", "销售总监", "IT 主管", "财务经理", "CEO", "Purchasing Manager", "工程师", "运营总监"];
const DOMAINS: &[&str] = &["qq.com", "163.com", "126.com", "gmail.com", "outlook.com", "sina.com", "foxmail.com"];
const LIFECYCLE: &[(&str, u32)] =
    &[("subscriber", 10), ("lead", 35), ("prospect", 25), ("customer", 22), ("churned", 8)];
const SOURCES: &[&str] = &["website", "referral", "event", "ads", "cold_call", "other"];

/// What `demo` created.
#[derive(Debug, Clone, Default)]
pub struct DemoSummary {
    pub users: usize,
    pub companies: usize,
    pub contacts: usize,
}

/// Rows per transaction.
const BATCH: usize = 1000;

fn pick<'a, T>(rng: &mut SmallRng, xs: &'a [T]) -> &'a T {
    &xs[rng.gen_range(0..xs.len())]
}

fn phone(rng: &mut SmallRng) -> String {
    let second = pick(rng, &['3', '5', '7', '8', '9']);
    format!("1{second}{:09}", rng.gen_range(0..1_000_000_000u64))
}

fn weighted<'a>(rng: &mut SmallRng, xs: &'a [(&'a str, u32)]) -> &'a str {
    let total: u32 = xs.iter().map(|x| x.1).sum();
    let mut r = rng.gen_range(0..total);
    for (k, w) in xs {
        if r < *w {
            return k;
        }
        r -= w;
    }
    xs[0].0
}

/// Generate the data set. `progress(done, total)` is called after each batch of contacts.
pub async fn demo(app: &App, contacts: usize, seed: u64, progress: impl Fn(usize, usize)) -> Result<DemoSummary> {
    let mut rng = SmallRng::seed_from_u64(seed);
    let sys = Actor::system();
    let run = format!("{:x}", rng.gen::<u32>());
    // A sales organisation: regions with teams, a manager and reps in each team.
    let sales = app.create_team("销售部", None).await?;
    let mut reps: Vec<Uuid> = Vec::new();
    let mut users = 0;
    for (region, teams) in [
        ("华东大区", vec!["上海一组", "上海二组", "杭州组"]),
        ("华北大区", vec!["北京组"]),
        ("华南大区", vec!["深圳组", "广州组"]),
        ("International", vec!["Global Accounts"]),
    ] {
        let r = app.create_team(region, Some(sales)).await?;
        users += 1;
        app.create_user(
            &format!("manager.{}.{run}@demo.kehu", reps.len()),
            &format!("{region}经理"),
            Some(r),
            "manager",
        )
        .await?;
        for t in teams {
            let team = app.create_team(t, Some(r)).await?;
            for i in 0..4 {
                let (s, sp) = pick(&mut rng, SURNAMES);
                let (g, gp) = pick(&mut rng, GIVEN);
                let id = app
                    .create_user(
                        &format!("{sp}.{gp}.{i}.{}.{run}@demo.kehu", reps.len()),
                        &format!("{s}{g}"),
                        Some(team),
                        "sales_rep",
                    )
                    .await?;
                reps.push(id);
                users += 1;
            }
        }
    }
    // Companies.
    let n_companies = (contacts / 8).max(10);
    let mut companies: Vec<(Uuid, Uuid)> = Vec::with_capacity(n_companies); // (id, owner)
    let mut batch = Vec::with_capacity(BATCH);
    let mut owners = Vec::with_capacity(BATCH);
    for i in 0..n_companies {
        let (city, province) = *pick(&mut rng, CITIES);
        let owner = *pick(&mut rng, &reps);
        let name = if i % 10 == 9 {
            format!(
                "{} {} Ltd. {}",
                pick(&mut rng, EN_CO),
                pick(&mut rng, &["Trading", "Systems", "Foods", "Logistics"]),
                i
            )
        } else {
            format!(
                "{city}{}{}有限公司{}",
                pick(&mut rng, CO_WORDS),
                pick(&mut rng, CO_KIND),
                if i >= 200 { format!("（{i}）") } else { String::new() }
            )
        };
        batch.push(obj(json!({
            "name": name, "city": city, "province": province, "owner": owner.to_string(),
            "industry": pick(&mut rng, &["internet", "manufacturing", "retail", "finance", "education", "healthcare", "other"]),
            "lifecycle_stage": weighted(&mut rng, LIFECYCLE), "source": pick(&mut rng, SOURCES),
            "annual_revenue": {"minor": rng.gen_range(1_000_000i64..10_000_000_000), "currency": "CNY"},
            "phone": format!("0{}{:08}", rng.gen_range(10..99), rng.gen_range(0..100_000_000u64)),
        })));
        owners.push(owner);
        if batch.len() == BATCH || i + 1 == n_companies {
            let ids = app.create_many(&sys, "company", &batch).await?;
            companies.extend(ids.into_iter().zip(owners.drain(..)));
            batch.clear();
        }
    }
    // Contacts.
    let mut links: Vec<(Uuid, Uuid)> = Vec::with_capacity(BATCH);
    for i in 0..contacts {
        let (city, province) = *pick(&mut rng, CITIES);
        let (name, local) = if rng.gen_ratio(85, 100) {
            let (s, sp) = pick(&mut rng, SURNAMES);
            let (g, gp) = pick(&mut rng, GIVEN);
            (format!("{s}{g}"), format!("{sp}{gp}"))
        } else {
            let f = pick(&mut rng, EN_FIRST);
            let l = pick(&mut rng, EN_LAST);
            (format!("{f} {l}"), format!("{}.{}", f.to_lowercase(), l.to_lowercase()))
        };
        let (company, owner) = *pick(&mut rng, &companies);
        let mut tags: Vec<&str> = Vec::new();
        for _ in 0..rng.gen_range(0..3) {
            let t = *pick(&mut rng, TAGS);
            if !tags.contains(&t) {
                tags.push(t);
            }
        }
        let mut m = obj(json!({
            "name": name,
            "email": format!("{local}{i}.{run}@{}", pick(&mut rng, DOMAINS)),
            "phone": phone(&mut rng),
            "company": company.to_string(),
            "owner": owner.to_string(),
            "job_title": pick(&mut rng, TITLES),
            "city": city, "province": province,
            "lifecycle_stage": weighted(&mut rng, LIFECYCLE),
            "source": pick(&mut rng, SOURCES),
            "score": rng.gen_range(0..100),
        }));
        if !tags.is_empty() {
            m.insert("tags".into(), json!(tags));
        }
        if rng.gen_ratio(1, 3) {
            m.insert(
                "birthday".into(),
                json!(format!("{}-{:02}-{:02}", rng.gen_range(1960..2004), rng.gen_range(1..13), rng.gen_range(1..29))),
            );
        }
        if rng.gen_ratio(1, 4) {
            m.insert("wechat".into(), json!(format!("wx_{local}{}", rng.gen_range(0..1000))));
        }
        batch.push(m);
        links.push((company, owner));
        if batch.len() == BATCH || i + 1 == contacts {
            let ids = app.create_many(&sys, "contact", &batch).await?;
            batch.clear();
            // One contact in five has a short history: a call and a note or a task.
            let mut acts = Vec::new();
            for (id, (company, owner)) in ids.into_iter().zip(links.drain(..)) {
                if !rng.gen_ratio(1, 5) {
                    continue;
                }
                let (subject, outcome) = *pick(&mut rng, CALLS);
                acts.push(obj(json!({
                    "kind": "call", "subject": subject, "outcome": outcome,
                    "contact": id.to_string(), "company": company.to_string(), "owner": owner.to_string(),
                })));
                let (kind, text) = *pick(&mut rng, FOLLOW_UPS);
                let mut a = obj(json!({
                    "kind": kind, "contact": id.to_string(), "company": company.to_string(), "owner": owner.to_string(),
                }));
                if kind == "task" {
                    a.insert("subject".into(), json!(text));
                    a.insert(
                        "due_at".into(),
                        json!(kehu_core::value::format_datetime(
                            kehu_core::now_micros() + rng.gen_range(-5i64..10) * 86_400_000_000,
                        )),
                    );
                } else {
                    a.insert("body".into(), json!(format!("<p>{text}</p>")));
                }
                acts.push(a);
            }
            if !acts.is_empty() {
                app.create_many(&sys, "activity", &acts).await?;
            }
            progress(i + 1, contacts);
        }
    }
    if app.db.backend() == kehu_db::Backend::Postgres {
        // Fresh statistics after a bulk load, so the planner sees the real distribution.
        app.db.exec_raw("ANALYZE").await?;
    }
    Ok(DemoSummary { users, companies: n_companies, contacts })
}

/// Calls a salesperson logs: subject and outcome.
const CALLS: &[(&str, &str)] = &[
    ("首次电话沟通", "connected"),
    ("跟进报价", "interested"),
    ("回访", "no_answer"),
    ("确认需求", "connected"),
    ("Intro call", "left_message"),
];

/// What follows a call: a note or a task.
const FOLLOW_UPS: &[(&str, &str)] = &[
    ("note", "客户对私有化部署感兴趣，预算待确认。"),
    ("note", "需要中文界面和数据导入，下周演示。"),
    ("task", "发送报价单"),
    ("task", "安排产品演示"),
    ("note", "Asked for a trial licence for 20 users."),
];

fn obj(v: Json) -> Map<String, Json> {
    match v {
        Json::Object(m) => m,
        _ => Map::new(),
    }
}
