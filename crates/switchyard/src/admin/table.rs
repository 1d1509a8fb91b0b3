//! Plain-text tables: lists as one header row and aligned columns, single
//! objects as `field  value` lines. Times are UTC `YYYY-MM-DD HH:MM`;
//! null or missing is `-`.

use serde_json::Value;

/// How a cell shows its value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Strings bare, arrays comma-joined, anything else as JSON.
    Plain,
    /// Unix milliseconds as a UTC time.
    Time,
    /// An `{"kind","id"}` reference as `kind:id` (audit actors and targets).
    Ref,
}

#[derive(Debug, PartialEq, Eq)]
pub struct Column {
    pub header: &'static str,
    /// Dotted path into the object: `limits.rpm`.
    pub path: &'static str,
    pub format: Format,
}

pub const fn col(header: &'static str, path: &'static str) -> Column {
    Column { header, path, format: Format::Plain }
}

pub const fn time(header: &'static str, path: &'static str) -> Column {
    Column { header, path, format: Format::Time }
}

pub const fn reference(header: &'static str, path: &'static str) -> Column {
    Column { header, path, format: Format::Ref }
}

/// The rows under one header, columns separated by two spaces and padded
/// to the widest cell; no trailing spaces.
pub fn render_list(columns: &[Column], rows: &[Value]) -> String {
    let mut grid: Vec<Vec<String>> = vec![columns.iter().map(|c| c.header.to_string()).collect()];
    for row in rows {
        grid.push(columns.iter().map(|c| cell(lookup(row, c.path), c.format)).collect());
    }
    render_grid(&grid)
}

/// One object as `field  value` lines, nested objects flattened to dotted
/// names (`limits.rpm`); fields named `at` or `…_at` are times.
pub fn render_object(object: &Value) -> String {
    let mut lines = Vec::new();
    flatten("", object, &mut lines);
    render_grid(&lines)
}

fn flatten(prefix: &str, value: &Value, out: &mut Vec<Vec<String>>) {
    match value {
        Value::Object(map) if !map.is_empty() || prefix.is_empty() => {
            for (k, v) in map {
                let name = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
                flatten(&name, v, out);
            }
        }
        _ => {
            let last = prefix.rsplit('.').next().unwrap_or(prefix);
            let format = if last == "at" || last.ends_with("_at") { Format::Time } else { Format::Plain };
            out.push(vec![prefix.to_string(), cell(Some(value), format)]);
        }
    }
}

fn render_grid(grid: &[Vec<String>]) -> String {
    let columns = grid.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|i| grid.iter().filter_map(|r| r.get(i)).map(|c| c.chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in grid {
        let mut line = String::new();
        for (i, c) in row.iter().enumerate() {
            if i > 0 {
                line.push_str("  ");
            }
            line.push_str(c);
            if i + 1 < row.len() {
                line.extend(std::iter::repeat_n(' ', widths[i].saturating_sub(c.chars().count())));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

fn lookup<'a>(row: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(row, |v, k| v.get(k))
}

/// One cell: `-` for null or missing; never more than one line.
pub fn cell(value: Option<&Value>, format: Format) -> String {
    let text = match (value, format) {
        (None | Some(Value::Null), _) => "-".to_string(),
        (Some(Value::Number(n)), Format::Time) => match n.as_i64() {
            Some(ms) => utc_minutes(ms),
            None => n.to_string(),
        },
        (Some(v @ Value::Object(m)), Format::Ref) => match (m.get("kind").and_then(Value::as_str), m.get("id")) {
            (Some(kind), Some(Value::String(id))) => format!("{kind}:{id}"),
            (Some(kind), _) => kind.to_string(),
            _ => v.to_string(),
        },
        (Some(Value::String(s)), _) => s.clone(),
        (Some(Value::Array(items)), _) if items.is_empty() => "[]".to_string(),
        (Some(Value::Array(items)), _) => {
            items.iter().map(|i| i.as_str().map_or_else(|| i.to_string(), str::to_string)).collect::<Vec<_>>().join(",")
        }
        (Some(v), _) => v.to_string(),
    };
    text.replace(['\r', '\n', '\t'], " ")
}

/// Unix milliseconds as UTC `YYYY-MM-DD HH:MM` (the proleptic Gregorian
/// calendar; Howard Hinnant's `civil_from_days`).
pub fn utc_minutes(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let minute_of_day = secs.rem_euclid(86_400) / 60;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02} {:02}:{:02}", minute_of_day / 60, minute_of_day % 60)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn times_are_utc_minutes() {
        assert_eq!(utc_minutes(0), "1970-01-01 00:00");
        assert_eq!(utc_minutes(1_764_900_000_000), "2025-12-05 02:00");
        assert_eq!(utc_minutes(951_782_400_000 + 59_999), "2000-02-29 00:00");
        assert_eq!(utc_minutes(4_107_542_340_000), "2100-02-28 23:59");
        assert_eq!(utc_minutes(-60_000), "1969-12-31 23:59");
    }

    #[test]
    fn list_columns_are_aligned_and_nulls_are_dashes() {
        let columns = [col("ID", "id"), col("NAME", "name"), col("RPM", "limits.rpm"), time("EXPIRES", "expires_at")];
        let rows = [
            json!({"id": "acme", "name": "Acme Corp", "limits": {"rpm": 600}, "expires_at": 0}),
            json!({"id": "b", "name": "B", "limits": {"rpm": null}, "expires_at": null}),
            json!({"id": "c", "name": "C"}),
        ];
        assert_eq!(
            render_list(&columns, &rows),
            "ID    NAME       RPM  EXPIRES\n\
             acme  Acme Corp  600  1970-01-01 00:00\n\
             b     B          -    -\n\
             c     C          -    -\n"
        );
        assert_eq!(render_list(&columns, &[]), "ID  NAME  RPM  EXPIRES\n");
    }

    #[test]
    fn cells_join_arrays_and_show_references() {
        assert_eq!(cell(Some(&json!(["admin", "viewer"])), Format::Plain), "admin,viewer");
        assert_eq!(cell(Some(&json!([])), Format::Plain), "[]");
        assert_eq!(cell(Some(&json!({"kind": "key", "id": "key_1"})), Format::Ref), "key:key_1");
        assert_eq!(cell(Some(&json!({"kind": "bootstrap"})), Format::Ref), "bootstrap");
        assert_eq!(cell(Some(&json!("two\nlines")), Format::Plain), "two lines");
        assert_eq!(cell(Some(&json!(true)), Format::Plain), "true");
    }

    #[test]
    fn objects_are_flattened_field_by_field() {
        // Keys in sorted order: the same with or without serde_json's `preserve_order`.
        let key = json!({"created_at": 0, "id": "key_1", "limits": {"rpm": 5, "tpm": null}, "metadata": {}, "roles": ["admin"]});
        assert_eq!(
            render_object(&key),
            "created_at  1970-01-01 00:00\n\
             id          key_1\n\
             limits.rpm  5\n\
             limits.tpm  -\n\
             metadata    {}\n\
             roles       admin\n"
        );
    }
}
