//! One request on the wire, the same for both loops: built from the run's
//! shared [`Job`], its response read to the end and classified once into an
//! [`Outcome`].

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{HeaderName, CONTENT_TYPE, HOST};
use http::{HeaderValue, Method, Request, Response, Uri};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;

use crate::api::{Api, ANTHROPIC_VERSION};
use crate::sse::{number_after, SseScanner};
use crate::stats::{micros, ErrorKind, Outcome, Tokens};

/// Everything needed to build and judge requests; shared read-only (but for
/// its counters) by every worker or request task.
#[derive(Debug)]
pub(crate) struct Job {
    pub api: Api,
    pub addr: SocketAddr,
    /// Origin-form request target (path and query).
    pub path: Uri,
    /// `http://ADDR/PATH` with the resolved address, for the pooled client.
    pub absolute: Uri,
    /// `Host`, as in `--url`.
    pub host: HeaderValue,
    /// `Authorization: Bearer …` or `x-api-key: …`.
    pub auth: Option<(HeaderName, HeaderValue)>,
    /// Request bodies; request k sends `bodies[k % len]`. Never empty.
    pub bodies: Vec<Bytes>,
    pub stream: bool,
    pub timeout: Duration,
    /// Start of the run (and of the warm-up).
    pub started: Instant,
    /// End of warm-up: requests started (open loop: due) before it are not recorded.
    pub measure_from: Instant,
    /// No request starts (open loop: is due) at or after this instant.
    pub stop_at: Instant,
    /// Cap on measured requests, with the count issued so far.
    pub cap: Option<(u64, AtomicU64)>,
    /// Requests built so far (warm-up included): picks the next body.
    pub built: AtomicU64,
}

impl Job {
    /// Claims one measured request under `--requests`; false once it is used up.
    pub(crate) fn claim(&self) -> bool {
        match &self.cap {
            Some((cap, issued)) => issued.fetch_add(1, Ordering::Relaxed) < *cap,
            None => true,
        }
    }

    /// The next request, aimed at `uri` (origin or absolute form).
    pub(crate) fn request(&self, uri: Uri) -> Request<Full<Bytes>> {
        let k = self.built.fetch_add(1, Ordering::Relaxed);
        let body = self.bodies[(k % self.bodies.len() as u64) as usize].clone();
        let mut req = Request::new(Full::new(body));
        *req.method_mut() = Method::POST;
        *req.uri_mut() = uri;
        let headers = req.headers_mut();
        headers.insert(HOST, self.host.clone());
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        if let Some((name, value)) = &self.auth {
            headers.insert(name.clone(), value.clone());
        }
        if self.api == Api::Anthropic {
            headers.insert("anthropic-version", HeaderValue::from_static(ANTHROPIC_VERSION));
        }
        req
    }

    /// Reads the whole response. For streams, `gaps` receives the gaps
    /// between consecutive content events (µs; events read together are 0
    /// apart).
    pub(crate) async fn read(
        &self,
        resp: Response<Incoming>,
        scanner: &mut SseScanner,
        gaps: &mut Vec<u32>,
    ) -> Outcome {
        gaps.clear();
        let status = resp.status();
        let mut body = resp.into_body();
        if !status.is_success() {
            return match drain(&mut body).await {
                Ok(()) => Outcome::Failed(ErrorKind::Status(status.as_u16())),
                Err(()) => Outcome::Failed(ErrorKind::Transport),
            };
        }
        if !self.stream {
            let Ok(all) = body.collect().await else {
                return Outcome::Failed(ErrorKind::Transport);
            };
            let tokens = number_after(&all.to_bytes(), self.api.usage_key()).map_or(Tokens::Unknown, Tokens::Usage);
            return Outcome::Ok { ttft: None, chunks: 0, tokens };
        }
        scanner.reset();
        let mut first = None;
        let mut last = None;
        while let Some(frame) = body.frame().await {
            let Ok(frame) = frame else {
                return Outcome::Failed(ErrorKind::Transport);
            };
            if let Some(data) = frame.data_ref() {
                let events = scanner.feed(data);
                stamp(events, &mut first, &mut last, gaps);
            }
        }
        let events = scanner.finish();
        stamp(events, &mut first, &mut last, gaps);
        if scanner.error || !scanner.done {
            return Outcome::Failed(ErrorKind::Stream);
        }
        let tokens = scanner.usage_tokens.map_or(Tokens::Counted(scanner.content_events), Tokens::Usage);
        Outcome::Ok { ttft: first, chunks: scanner.chunks, tokens }
    }
}

/// Notes `events` content events read now: the first one of the stream is
/// its TTFT, each later one adds the gap to the one before.
fn stamp(events: u32, first: &mut Option<Instant>, last: &mut Option<Instant>, gaps: &mut Vec<u32>) {
    if events == 0 {
        return;
    }
    let now = Instant::now();
    match *last {
        None => *first = Some(now),
        Some(prev) => gaps.push(u32::try_from(micros(now - prev)).unwrap_or(u32::MAX)),
    }
    gaps.extend(std::iter::repeat_n(0, events as usize - 1));
    *last = Some(now);
}

/// Reads and discards the body: a connection is reusable only after it.
async fn drain(body: &mut Incoming) -> Result<(), ()> {
    while let Some(frame) = body.frame().await {
        frame.map_err(|_| ())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_make_ttft_and_gaps() {
        let (mut first, mut last, mut gaps) = (None, None, Vec::new());
        stamp(0, &mut first, &mut last, &mut gaps);
        assert_eq!((first, last), (None, None));
        stamp(3, &mut first, &mut last, &mut gaps);
        assert!(first.is_some());
        // Three events in the first frame: the first is the TTFT, two 0 gaps.
        assert_eq!(gaps, [0, 0]);
        std::thread::sleep(Duration::from_millis(2));
        stamp(1, &mut first, &mut last, &mut gaps);
        assert_eq!(gaps.len(), 3);
        assert!(gaps[2] >= 2000, "{gaps:?}");
        assert!(last > first);
    }
}
