//! Date buckets in the viewer's zone: the zone's UTC offsets over the data's range (bound as
//! SQL), and each bucket key's first and next local day, first instant and label.

use crate::Result;
use chrono::{Duration, NaiveDate, Offset, TimeZone};
use kehu_core::AppError;
use kehu_db::aggregate::{Bucket, DAY};

pub(super) fn parse_bucket(s: &str) -> Option<Bucket> {
    Some(match s {
        "day" => Bucket::Day,
        "week" => Bucket::Week,
        "month" => Bucket::Month,
        "quarter" => Bucket::Quarter,
        "year" => Bucket::Year,
        _ => return None,
    })
}

pub(super) fn week_start(s: Option<&str>) -> Result<i64> {
    let days = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"];
    match s {
        None => Ok(0),
        Some(s) => days
            .iter()
            .position(|d| *d == s)
            .map(|i| i as i64)
            .ok_or_else(|| AppError::invalid("aggregate.invalid_week_start")),
    }
}

/// The zone's UTC offsets (microseconds) between two instants: `(until, offset)` ascending,
/// the last until `i64::MAX`. Transitions are found day by day, then to the second.
pub fn zone_offsets(tz: &chrono_tz::Tz, lo: i64, hi: i64) -> Vec<(i64, i64)> {
    let off = |t: i64| -> i64 {
        let secs = t.div_euclid(1_000_000);
        tz.offset_from_utc_datetime(&chrono::DateTime::from_timestamp(secs, 0).unwrap_or_default().naive_utc())
            .fix()
            .local_minus_utc() as i64
            * 1_000_000
    };
    // Years 1900–2200 bound the walk (values beyond take the offset at the bound), so a
    // wild date costs no more than a few hundred thousand steps and cannot overflow.
    const FLOOR: i64 = -2_208_988_800_000_000;
    const CEIL: i64 = 7_258_118_400_000_000;
    let (lo, hi) = (lo.min(hi).clamp(FLOOR, CEIL) - DAY, lo.max(hi).clamp(FLOOR, CEIL) + DAY);
    let mut out = Vec::new();
    let mut cur = off(lo);
    let mut t = lo;
    while t < hi {
        let next = (t + DAY).min(hi);
        if off(next) != cur {
            // Binary search the first second with the new offset.
            let (mut a, mut b) = (t.div_euclid(1_000_000), next.div_euclid(1_000_000));
            while b - a > 1 {
                let mid = (a + b) / 2;
                if off(mid * 1_000_000) == cur {
                    a = mid;
                } else {
                    b = mid;
                }
            }
            out.push((b * 1_000_000, cur));
            cur = off(b * 1_000_000);
        }
        t = next;
    }
    out.push((i64::MAX, cur));
    out
}

/// The first local day of a date key, and of the next one.
pub(super) fn bucket_days(bucket: Bucket, key: i64, ws: i64, fs: i64) -> Option<(NaiveDate, NaiveDate)> {
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1)?;
    let month = |m: i64| NaiveDate::from_ymd_opt(m.div_euclid(12) as i32, (m.rem_euclid(12) + 1) as u32, 1);
    Some(match bucket {
        Bucket::Day => {
            let d = epoch + Duration::days(key);
            (d, d + Duration::days(1))
        }
        Bucket::Week => {
            let d = epoch + Duration::days(7 * key - 3 + ws);
            (d, d + Duration::days(7))
        }
        Bucket::Month => (month(key)?, month(key + 1)?),
        Bucket::Quarter => (month(3 * key + fs - 1)?, month(3 * key + fs + 2)?),
        Bucket::Year => (month(12 * key + fs - 1)?, month(12 * key + fs + 11)?),
    })
}

/// The first instant of a local day in the zone.
pub(super) fn day_start(tz: &chrono_tz::Tz, d: NaiveDate) -> i64 {
    let mut t = d.and_hms_opt(0, 0, 0).unwrap_or_default();
    for _ in 0..4 {
        if let Some(x) = tz.from_local_datetime(&t).earliest() {
            return x.timestamp_micros();
        }
        t += Duration::minutes(30);
    }
    t.and_utc().timestamp_micros()
}

pub(super) fn bucket_label(bucket: Bucket, key: i64, start: NaiveDate, fs: i64) -> String {
    let fy = |y: i64| if fs == 1 { y.to_string() } else { format!("FY{y}") };
    match bucket {
        Bucket::Day | Bucket::Week => start.format("%Y-%m-%d").to_string(),
        Bucket::Month => start.format("%Y-%m").to_string(),
        Bucket::Quarter => format!("{} Q{}", fy(key.div_euclid(4)), key.rem_euclid(4) + 1),
        Bucket::Year => fy(key),
    }
}
