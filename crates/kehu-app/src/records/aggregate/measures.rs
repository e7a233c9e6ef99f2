//! Measures: which database aggregates stand behind each requested measure, and its value
//! from their cells (exact sums, averages rounded to the field's scale + 2, empty shares).

use kehu_core::meta::FieldDef;
use kehu_core::value::format_scaled;
use kehu_db::aggregate::Measure;
use kehu_db::DbVal;
use serde_json::{json, Value as Json};
use std::sync::Arc;

#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Op {
    Count,
    CountDistinct,
    Sum,
    Avg,
    Min,
    Max,
    EmptyShare,
}

pub(super) struct M {
    pub(super) op: Op,
    pub(super) field: Option<Arc<FieldDef>>,
}

/// The database measures behind one requested measure.
pub(super) fn db_measures(m: &M) -> Vec<Measure<'_>> {
    let Some(f) = m.field.as_deref() else { return vec![Measure::Count] };
    match m.op {
        Op::Count => vec![Measure::Count],
        Op::CountDistinct => vec![Measure::CountDistinct(f)],
        Op::Sum => vec![Measure::Sum(f)],
        Op::Avg => vec![Measure::Sum(f), Measure::Filled(f)],
        Op::Min => vec![Measure::Min(f)],
        Op::Max => vec![Measure::Max(f)],
        Op::EmptyShare => vec![Measure::Filled(f)],
    }
}

/// A measure's value from its database cells; `scale` formats sums of scaled numbers.
pub(super) fn measure_value(m: &M, count: i64, cells: &[DbVal], scale: u8) -> Json {
    let int = |v: &DbVal| -> Option<i128> {
        match v {
            DbVal::Int(n) => Some(i128::from(*n)),
            DbVal::Text(s) => s.trim().split('.').next().and_then(|s| s.parse().ok()),
            DbVal::Real(x) => Some(*x as i128),
            _ => None,
        }
    };
    let scaled = |n: i128| -> Json {
        if scale == 0 {
            i64::try_from(n).map(|n| json!(n)).unwrap_or_else(|_| json!(n.to_string()))
        } else {
            i64::try_from(n).map(|n| json!(format_scaled(n, scale))).unwrap_or_else(|_| json!(n.to_string()))
        }
    };
    match m.op {
        Op::Count => json!(count),
        Op::CountDistinct => cells.first().and_then(int).map(|n| json!(n as i64)).unwrap_or(json!(0)),
        Op::Sum => cells.first().and_then(int).map(scaled).unwrap_or(Json::Null),
        Op::Avg => {
            let (Some(sum), Some(n)) = (cells.first().and_then(int), cells.get(1).and_then(int)) else {
                return Json::Null;
            };
            if n == 0 {
                return Json::Null;
            }
            json!(avg_text(sum, n, scale))
        }
        Op::Min | Op::Max => match cells.first() {
            Some(DbVal::Text(s)) => json!(s),
            Some(v) => int(v).map(scaled).unwrap_or(Json::Null),
            None => Json::Null,
        },
        Op::EmptyShare => {
            let filled = cells.first().and_then(int).unwrap_or(0);
            if count == 0 {
                return Json::Null;
            }
            let share = (count as f64 - filled as f64) / count as f64;
            json!((share * 10_000.0).round() / 10_000.0)
        }
    }
}

/// `sum / n` of values scaled by `scale` digits, as a decimal with `scale + 2` digits, rounded
/// half away from zero.
pub fn avg_text(sum: i128, n: i128, scale: u8) -> String {
    let digits = u32::from(scale) + 2;
    let num = sum * 100;
    let q = num / n;
    let r = num % n;
    let q = if (r.abs() * 2) >= n.abs() { q + num.signum() * n.signum() } else { q };
    let neg = q < 0;
    let a = q.unsigned_abs();
    let p = 10u128.pow(digits);
    let int = a / p;
    let frac = a % p;
    let s = format!("{int}.{frac:0width$}", width = digits as usize);
    let s = s.trim_end_matches('0').trim_end_matches('.').to_string();
    if neg && s != "0" {
        format!("-{s}")
    } else {
        s
    }
}
