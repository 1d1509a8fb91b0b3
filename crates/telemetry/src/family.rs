//! Label-keyed metric families rendered in the Prometheus text format.

use std::collections::HashMap;
use std::fmt::Write;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

/// Seconds; from 0.1 ms (gateway overhead) to 10 min (long generations).
pub const LATENCY_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
    120.0, 300.0, 600.0,
];

/// Token counts, powers of four as in the OpenTelemetry GenAI advice.
pub const TOKEN_BUCKETS: &[f64] = &[1.0, 4.0, 16.0, 64.0, 256.0, 1024.0, 4096.0, 16384.0, 65536.0, 262144.0, 1048576.0];

/// Label values joined by `\u{1f}` (a byte no label contains).
type Key = String;

const SEP: char = '\u{1f}';

fn key_of(values: &[&str]) -> Key {
    let mut k = String::with_capacity(values.iter().map(|v| v.len() + 1).sum());
    for (i, v) in values.iter().enumerate() {
        if i > 0 {
            k.push(SEP);
        }
        k.push_str(v);
    }
    k
}

/// Whether `key` is `values` joined by [`SEP`], without building it.
fn key_matches(key: &str, values: &[&str]) -> bool {
    let mut rest = key;
    for (i, v) in values.iter().enumerate() {
        if i > 0 {
            match rest.strip_prefix(SEP) {
                Some(r) => rest = r,
                None => return false,
            }
        }
        match rest.strip_prefix(v) {
            Some(r) => rest = r,
            None => return false,
        }
    }
    rest.is_empty()
}

/// FNV-1a over the label values (and separators): the map's key, computed
/// without allocating, so a lookup on the hot path allocates nothing.
fn hash_of(values: &[&str]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for v in values {
        for b in v.bytes().chain(std::iter::once(0x1f)) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    h
}

/// Shared by the families: label values to a series, read-locked on the
/// hot path (write-locked only the first time a label set is seen). Keyed
/// by a hash of the values; each bucket keeps the full key to compare.
struct Series<T> {
    names: &'static [&'static str],
    map: RwLock<Buckets<T>>,
}

/// Hash of the label values → the series whose values hash there. The key
/// is already a hash: the map uses it as is instead of SipHashing it again
/// (~550 instructions per request, four or five lookups each).
type Buckets<T> = HashMap<u64, Vec<(Key, Arc<T>)>, BuildHasherDefault<PreHashed>>;

/// A `Hasher` for keys that are hashes already: passes the `u64` through.
#[derive(Default)]
struct PreHashed(u64);

impl Hasher for PreHashed {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        // Only `u64` keys use this hasher; fold anything else in anyway.
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

impl<T> Series<T> {
    fn new(names: &'static [&'static str]) -> Self {
        Series { names, map: RwLock::new(HashMap::default()) }
    }

    fn get_or(&self, values: &[&str], make: impl FnOnce() -> T) -> Arc<T> {
        debug_assert_eq!(values.len(), self.names.len());
        let hash = hash_of(values);
        if let Ok(map) = self.map.read() {
            if let Some((_, v)) = map.get(&hash).and_then(|b| b.iter().find(|(k, _)| key_matches(k, values))) {
                return v.clone();
            }
        }
        let mut map = match self.map.write() {
            Ok(m) => m,
            Err(p) => p.into_inner(),
        };
        let bucket = map.entry(hash).or_default();
        if let Some((_, v)) = bucket.iter().find(|(k, _)| key_matches(k, values)) {
            return v.clone();
        }
        let v = Arc::new(make());
        bucket.push((key_of(values), v.clone()));
        v
    }

    fn snapshot(&self) -> Vec<(Key, Arc<T>)> {
        let flatten = |map: &Buckets<T>| -> Vec<(Key, Arc<T>)> {
            map.values().flatten().map(|(k, v)| (k.clone(), v.clone())).collect()
        };
        let mut v = match self.map.read() {
            Ok(map) => flatten(&map),
            Err(p) => flatten(&p.into_inner()),
        };
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }

    /// One `name{labels} value` line per series, under its header.
    fn render_scalars<V: std::fmt::Display>(
        &self,
        out: &mut String,
        name: &str,
        help: &str,
        kind: &str,
        value: impl Fn(&T) -> V,
    ) {
        header(out, name, help, kind);
        for (labels, v) in self.snapshot() {
            let _ = writeln!(out, "{name}{} {}", self.label_text(&labels, None), value(&v));
        }
    }

    fn label_text(&self, key: &str, extra: Option<(&str, &str)>) -> String {
        let mut s = String::new();
        let values = if self.names.is_empty() { None } else { Some(key.split(SEP)) };
        let pairs = self.names.iter().copied().zip(values.into_iter().flatten()).chain(extra);
        for (i, (k, v)) in pairs.enumerate() {
            if i > 0 {
                s.push(',');
            }
            let _ = write!(s, "{k}=\"{}\"", escape(v));
        }
        if s.is_empty() {
            s
        } else {
            format!("{{{s}}}")
        }
    }
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

fn header(out: &mut String, name: &str, help: &str, kind: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// A value made once per label set and then looked up by it, with the
/// same lock-free-read map as the families: for handles to several series
/// that are always written together (one lookup instead of one each).
pub struct Memo<T> {
    series: Series<T>,
}

impl<T> Memo<T> {
    pub fn new(names: &'static [&'static str]) -> Self {
        Memo { series: Series::new(names) }
    }

    pub fn get_or(&self, values: &[&str], make: impl FnOnce() -> T) -> Arc<T> {
        self.series.get_or(values, make)
    }
}

pub struct CounterFamily {
    name: &'static str,
    help: &'static str,
    series: Series<AtomicU64>,
}

impl CounterFamily {
    pub fn new(name: &'static str, help: &'static str, labels: &'static [&'static str]) -> Self {
        CounterFamily { name, help, series: Series::new(labels) }
    }
    pub fn inc(&self, labels: &[&str]) {
        self.add(labels, 1);
    }
    pub fn add(&self, labels: &[&str], n: u64) {
        self.series.get_or(labels, Default::default).fetch_add(n, Ordering::Relaxed);
    }
    pub fn get(&self, labels: &[&str]) -> u64 {
        self.series.get_or(labels, Default::default).load(Ordering::Relaxed)
    }
    pub fn render(&self, out: &mut String) {
        self.series.render_scalars(out, self.name, self.help, "counter", |v| v.load(Ordering::Relaxed));
    }
}

pub struct GaugeFamily {
    name: &'static str,
    help: &'static str,
    series: Series<AtomicI64>,
}

impl GaugeFamily {
    pub fn new(name: &'static str, help: &'static str, labels: &'static [&'static str]) -> Self {
        GaugeFamily { name, help, series: Series::new(labels) }
    }
    pub fn add(&self, labels: &[&str], n: i64) {
        self.series.get_or(labels, Default::default).fetch_add(n, Ordering::Relaxed);
    }
    pub fn set(&self, labels: &[&str], n: i64) {
        self.series.get_or(labels, Default::default).store(n, Ordering::Relaxed);
    }
    pub fn get(&self, labels: &[&str]) -> i64 {
        self.series.get_or(labels, Default::default).load(Ordering::Relaxed)
    }
    pub fn render(&self, out: &mut String) {
        self.series.render_scalars(out, self.name, self.help, "gauge", |v| v.load(Ordering::Relaxed));
    }
}

/// Fixed buckets; the sum is kept in micro-units so it stays an atomic
/// integer.
pub struct Histogram {
    buckets: &'static [f64],
    counts: Vec<AtomicU64>,
    count: AtomicU64,
    sum_micros: AtomicU64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram::with_buckets(LATENCY_BUCKETS)
    }
}

impl Histogram {
    fn with_buckets(buckets: &'static [f64]) -> Self {
        Histogram {
            buckets,
            counts: buckets.iter().map(|_| AtomicU64::new(0)).collect(),
            count: AtomicU64::new(0),
            sum_micros: AtomicU64::new(0),
        }
    }

    pub fn observe(&self, value: f64) {
        if let Some(i) = self.buckets.iter().position(|b| value <= *b) {
            self.counts[i].fetch_add(1, Ordering::Relaxed);
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_micros.fetch_add((value.max(0.0) * 1e6) as u64, Ordering::Relaxed);
    }

    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }
}

pub struct HistogramFamily {
    name: &'static str,
    help: &'static str,
    buckets: &'static [f64],
    series: Series<Histogram>,
}

impl HistogramFamily {
    pub fn new(
        name: &'static str,
        help: &'static str,
        labels: &'static [&'static str],
        buckets: &'static [f64],
    ) -> Self {
        HistogramFamily { name, help, buckets, series: Series::new(labels) }
    }

    pub fn get(&self, values: &[&str]) -> Arc<Histogram> {
        let buckets = self.buckets;
        self.series.get_or(values, || Histogram::with_buckets(buckets))
    }

    pub fn observe(&self, labels: &[&str], value: f64) {
        self.get(labels).observe(value);
    }

    pub fn render(&self, out: &mut String) {
        header(out, self.name, self.help, "histogram");
        for (labels, h) in self.series.snapshot() {
            let mut cumulative = 0;
            for (b, c) in h.buckets.iter().zip(&h.counts) {
                cumulative += c.load(Ordering::Relaxed);
                let le = format!("{b}");
                let _ = writeln!(
                    out,
                    "{}_bucket{} {cumulative}",
                    self.name,
                    self.series.label_text(&labels, Some(("le", &le)))
                );
            }
            let count = h.count.load(Ordering::Relaxed);
            let _ =
                writeln!(out, "{}_bucket{} {count}", self.name, self.series.label_text(&labels, Some(("le", "+Inf"))));
            let sum = h.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
            let _ = writeln!(out, "{}_sum{} {sum}", self.name, self.series.label_text(&labels, None));
            let _ = writeln!(out, "{}_count{} {count}", self.name, self.series.label_text(&labels, None));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counter_renders_labels() {
        let c = CounterFamily::new("x_total", "help", &["route", "status"]);
        c.inc(&["chat", "200"]);
        c.add(&["chat", "200"], 2);
        c.inc(&["chat", "500"]);
        let mut out = String::new();
        c.render(&mut out);
        assert!(out.contains("x_total{route=\"chat\",status=\"200\"} 3"), "{out}");
        assert!(out.contains("x_total{route=\"chat\",status=\"500\"} 1"), "{out}");
    }

    #[test]
    fn histogram_is_cumulative() {
        let h = HistogramFamily::new("d_seconds", "help", &["route"], LATENCY_BUCKETS);
        h.observe(&["a"], 0.0002);
        h.observe(&["a"], 0.003);
        h.observe(&["a"], 1000.0);
        let mut out = String::new();
        h.render(&mut out);
        assert!(out.contains("d_seconds_bucket{route=\"a\",le=\"0.00025\"} 1"), "{out}");
        assert!(out.contains("d_seconds_bucket{route=\"a\",le=\"0.005\"} 2"), "{out}");
        assert!(out.contains("d_seconds_bucket{route=\"a\",le=\"+Inf\"} 3"), "{out}");
        assert!(out.contains("d_seconds_count{route=\"a\"} 3"), "{out}");
    }

    #[test]
    fn lookups_match_whole_values_only() {
        assert!(key_matches(&key_of(&["a", "b"]), &["a", "b"]));
        assert!(!key_matches(&key_of(&["a", "b"]), &["a", "bc"]));
        assert!(!key_matches(&key_of(&["ab", ""]), &["a", "b"]));
        let c = CounterFamily::new("z_total", "help", &["a", "b"]);
        c.inc(&["x", "y"]);
        c.inc(&["x", "y"]);
        c.inc(&["xy", ""]);
        assert_eq!(c.get(&["x", "y"]), 2);
        assert_eq!(c.get(&["xy", ""]), 1);
    }

    #[test]
    fn label_values_are_escaped() {
        let c = CounterFamily::new("y_total", "help", &["k"]);
        c.inc(&["a\"b"]);
        let mut out = String::new();
        c.render(&mut out);
        assert!(out.contains("y_total{k=\"a\\\"b\"} 1"), "{out}");
    }
}
