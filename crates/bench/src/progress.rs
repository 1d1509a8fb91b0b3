//! The progress line on stderr: elapsed / duration, requests done, current
//! RPS and errors, redrawn in place with `\r` four times a second. Shown only
//! when stderr is a terminal and `--quiet` is not given.

use std::io::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use crate::stats::Sink;

/// Redraw period: at most four redraws a second.
const PERIOD: Duration = Duration::from_millis(250);
/// Cells of the bar itself.
const BAR: usize = 20;

/// A running progress line; [`Progress::finish`] erases it.
pub(crate) struct Progress {
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

impl Progress {
    /// Starts drawing, or returns `None` when stderr is not a terminal.
    pub(crate) fn start(sink: Arc<Sink>, measure_from: Instant, duration: Duration) -> Option<Self> {
        use std::io::IsTerminal as _;
        if !std::io::stderr().is_terminal() {
            return None;
        }
        let (stop, mut stopped) = oneshot::channel();
        let task = tokio::spawn(async move {
            let mut tick = tokio::time::interval(PERIOD);
            let mut last = (Instant::now(), 0u64);
            let mut width = 0usize;
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = &mut stopped => break,
                }
                let now = Instant::now();
                let (done, errors) = sink.counts();
                let dt = now.duration_since(last.0).as_secs_f64();
                let rps = if dt > 0.0 { done.saturating_sub(last.1) as f64 / dt } else { 0.0 };
                last = (now, done);
                let text = line(now, measure_from, duration, done, rps, errors);
                // Pad to the previous width so a shorter line leaves no tail.
                let pad = width.saturating_sub(text.chars().count());
                width = text.chars().count();
                let mut err = std::io::stderr().lock();
                let _ = write!(err, "\r{text}{:pad$}", "");
                let _ = err.flush();
            }
            let _ = write!(std::io::stderr().lock(), "\r{:width$}\r", "");
        });
        Some(Self { stop, task })
    }

    /// Stops drawing and erases the line.
    pub(crate) async fn finish(self) {
        let _ = self.stop.send(());
        let _ = self.task.await;
    }
}

/// One progress line, e.g.
/// `[=========>          ] 4.6/10.0 s  1234 req  268.1 req/s  0 errors`.
fn line(now: Instant, measure_from: Instant, duration: Duration, done: u64, rps: f64, errors: u64) -> String {
    let total = duration.as_secs_f64();
    if now < measure_from {
        let left = (measure_from - now).as_secs_f64();
        return format!("warm-up: measuring in {left:.1} s");
    }
    let elapsed = now.duration_since(measure_from).as_secs_f64().min(total);
    let filled = if total > 0.0 { ((elapsed / total) * BAR as f64) as usize } else { BAR }.min(BAR);
    let bar: String = (0..BAR)
        .map(|i| match i.cmp(&filled) {
            std::cmp::Ordering::Less => '=',
            std::cmp::Ordering::Equal => '>',
            std::cmp::Ordering::Greater => ' ',
        })
        .collect();
    format!("[{bar}] {elapsed:.1}/{total:.1} s  {done} req  {rps:.1} req/s  {errors} errors")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_line() {
        let t0 = Instant::now();
        let d = Duration::from_secs(10);
        let half = line(t0 + Duration::from_secs(5), t0, d, 1234, 268.14, 2);
        assert_eq!(half, "[==========>         ] 5.0/10.0 s  1234 req  268.1 req/s  2 errors");
        let end = line(t0 + Duration::from_secs(11), t0, d, 9, 0.0, 0);
        assert!(end.starts_with("[====================] 10.0/10.0 s"), "{end}");
        let warm = line(t0, t0 + Duration::from_millis(1500), d, 0, 0.0, 0);
        assert_eq!(warm, "warm-up: measuring in 1.5 s");
    }
}
