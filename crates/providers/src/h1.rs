//! HTTP/1.1 on the wire, for [`crate::pool`]: a request head written out,
//! a response head parsed (httparse), and a response body's framing
//! decoded — `content-length`, `chunked`, or until the server closes.
//! Pure functions over buffers; the I/O is the pool's.

use bytes::{Buf, Bytes, BytesMut};

/// Largest response head accepted (status line and headers).
pub const MAX_HEAD: usize = 64 * 1024;
/// Most headers accepted in a response head.
const MAX_HEADERS: usize = 100;
/// Longest chunk-size line accepted (size, extensions).
const MAX_CHUNK_LINE: usize = 4096;

/// What went wrong on the wire.
#[derive(Debug, PartialEq, Eq)]
pub struct WireError(pub String);

/// The request head: request line in origin form, the caller's headers,
/// `host` when the caller set none, `content-length` for a body.
pub fn encode_head(parts: &http::request::Parts, body_len: usize, host: &str) -> Vec<u8> {
    let target = parts.uri.path_and_query().map_or("/", |pq| pq.as_str());
    let mut head = Vec::with_capacity(256 + parts.headers.len() * 48);
    head.extend_from_slice(parts.method.as_str().as_bytes());
    head.push(b' ');
    head.extend_from_slice(target.as_bytes());
    head.extend_from_slice(b" HTTP/1.1\r\n");
    if !parts.headers.contains_key(http::header::HOST) {
        line(&mut head, b"host", host.as_bytes());
    }
    for (name, value) in &parts.headers {
        if name != http::header::CONTENT_LENGTH && name != http::header::TRANSFER_ENCODING {
            line(&mut head, name.as_str().as_bytes(), value.as_bytes());
        }
    }
    if body_len > 0 || parts.method == http::Method::POST || parts.method == http::Method::PUT {
        line(&mut head, b"content-length", digits(body_len).as_bytes());
    }
    head.extend_from_slice(b"\r\n");
    head
}

fn line(head: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    head.extend_from_slice(name);
    head.extend_from_slice(b": ");
    head.extend_from_slice(value);
    head.extend_from_slice(b"\r\n");
}

/// A number's decimal digits, without a `String`.
struct Digits {
    buf: [u8; 20],
    start: usize,
}

impl Digits {
    fn as_bytes(&self) -> &[u8] {
        &self.buf[self.start..]
    }
}

fn digits(mut n: usize) -> Digits {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    Digits { buf, start: i }
}

/// A parsed response head.
#[derive(Debug)]
pub struct Head {
    pub status: http::StatusCode,
    pub headers: http::HeaderMap,
    pub framing: Framing,
    /// The connection may carry another request after this answer.
    pub keep_alive: bool,
}

/// How the body's end is found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framing {
    Length(u64),
    Chunked,
    /// Until the server closes the connection.
    Close,
}

/// Parses a response head from the front of `buf`, taking it off; `None`
/// until the whole head is there. Informational (1xx) answers are skipped.
pub fn parse_head(buf: &mut BytesMut, request_method: &http::Method) -> Result<Option<Head>, WireError> {
    loop {
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut response = httparse::Response::new(&mut headers);
        let len = match response.parse(buf) {
            Ok(httparse::Status::Complete(len)) => len,
            Ok(httparse::Status::Partial) if buf.len() >= MAX_HEAD => {
                return Err(WireError(format!("response head larger than {MAX_HEAD} bytes")));
            }
            Ok(httparse::Status::Partial) => return Ok(None),
            Err(e) => return Err(WireError(format!("malformed response head: {e}"))),
        };
        let code = response.code.unwrap_or(0);
        let status = http::StatusCode::from_u16(code).map_err(|_| WireError(format!("bad status {code}")))?;
        if status.is_informational() {
            if code == 101 {
                return Err(WireError("unexpected protocol switch (101)".into()));
            }
            buf.advance(len);
            continue;
        }
        let mut map = http::HeaderMap::with_capacity(response.headers.len());
        let mut keep_alive = response.version == Some(1);
        let (mut chunked, mut length) = (false, None::<u64>);
        for h in response.headers.iter() {
            let name = http::HeaderName::from_bytes(h.name.as_bytes())
                .map_err(|_| WireError(format!("bad header name {:?}", h.name)))?;
            let value = http::HeaderValue::from_bytes(h.value)
                .map_err(|_| WireError(format!("bad value for header {:?}", h.name)))?;
            if name == http::header::TRANSFER_ENCODING {
                chunked = value
                    .as_bytes()
                    .rsplit(|b| *b == b',')
                    .next()
                    .is_some_and(|last| last.trim_ascii().eq_ignore_ascii_case(b"chunked"));
            } else if name == http::header::CONTENT_LENGTH {
                let n = std::str::from_utf8(value.as_bytes())
                    .ok()
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .ok_or_else(|| WireError("bad content-length".into()))?;
                if length.is_some_and(|l| l != n) {
                    return Err(WireError("conflicting content-length headers".into()));
                }
                length = Some(n);
            } else if name == http::header::CONNECTION {
                let v = value.as_bytes();
                if v.split(|b| *b == b',').any(|t| t.trim_ascii().eq_ignore_ascii_case(b"close")) {
                    keep_alive = false;
                }
            }
            map.append(name, value);
        }
        buf.advance(len);
        let bodiless = *request_method == http::Method::HEAD || code == 204 || code == 304;
        let framing = match (bodiless, chunked, length) {
            (true, _, _) => Framing::Length(0),
            (false, true, _) => Framing::Chunked,
            (false, false, Some(n)) => Framing::Length(n),
            (false, false, None) => Framing::Close,
        };
        if framing == Framing::Close {
            keep_alive = false;
        }
        return Ok(Some(Head { status, headers: map, framing, keep_alive }));
    }
}

/// Decodes a body's framing from a buffer, one piece of data at a time.
#[derive(Debug)]
pub struct Decoder {
    state: State,
}

#[derive(Debug, PartialEq, Eq)]
enum State {
    /// Bytes left of a `content-length` body.
    Length(u64),
    /// Before a chunk-size line.
    ChunkSize,
    /// Bytes left of the current chunk, then its CRLF.
    ChunkData(u64),
    ChunkEnd,
    /// After the last (zero) chunk: trailer lines until an empty one.
    Trailers,
    Close,
    Done,
}

/// One step of decoding.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    Data(Bytes),
    /// More bytes are needed from the connection.
    NeedMore,
    Done,
}

impl Decoder {
    pub fn new(framing: Framing) -> Decoder {
        let state = match framing {
            Framing::Length(0) => State::Done,
            Framing::Length(n) => State::Length(n),
            Framing::Chunked => State::ChunkSize,
            Framing::Close => State::Close,
        };
        Decoder { state }
    }

    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// The next piece of the body from `buf` (taken off it). Pieces are
    /// copied out, so the connection's buffer stays one allocation.
    pub fn step(&mut self, buf: &mut BytesMut) -> Result<Step, WireError> {
        loop {
            match self.state {
                State::Done => return Ok(Step::Done),
                State::Length(left) | State::ChunkData(left) => {
                    if buf.is_empty() {
                        return Ok(Step::NeedMore);
                    }
                    let n = usize::try_from(left).unwrap_or(usize::MAX).min(buf.len());
                    let data = take(buf, n);
                    let left = left - n as u64;
                    self.state = match self.state {
                        State::Length(_) if left == 0 => State::Done,
                        State::Length(_) => State::Length(left),
                        _ if left == 0 => State::ChunkEnd,
                        _ => State::ChunkData(left),
                    };
                    return Ok(Step::Data(data));
                }
                State::Close => {
                    if buf.is_empty() {
                        return Ok(Step::NeedMore);
                    }
                    let n = buf.len();
                    return Ok(Step::Data(take(buf, n)));
                }
                State::ChunkSize => {
                    let Some(line) = take_line(buf, MAX_CHUNK_LINE)? else { return Ok(Step::NeedMore) };
                    let size = line.split(|b| *b == b';').next().unwrap_or(&[]).trim_ascii();
                    let size = std::str::from_utf8(size)
                        .ok()
                        .filter(|s| !s.is_empty() && s.len() <= 16)
                        .and_then(|s| u64::from_str_radix(s, 16).ok())
                        .ok_or_else(|| WireError("bad chunk size".into()))?;
                    self.state = if size == 0 { State::Trailers } else { State::ChunkData(size) };
                }
                State::ChunkEnd => {
                    if buf.len() < 2 {
                        return Ok(Step::NeedMore);
                    }
                    if &buf[..2] != b"\r\n" {
                        return Err(WireError("chunk not followed by CRLF".into()));
                    }
                    buf.advance(2);
                    self.state = State::ChunkSize;
                }
                State::Trailers => {
                    let Some(line) = take_line(buf, MAX_HEAD)? else { return Ok(Step::NeedMore) };
                    if line.is_empty() {
                        self.state = State::Done;
                    }
                }
            }
        }
    }

    /// The server closed the connection: the end of a body read until
    /// close, an error for any other.
    pub fn eof(&mut self) -> Result<(), WireError> {
        match self.state {
            State::Close | State::Done => {
                self.state = State::Done;
                Ok(())
            }
            _ => Err(WireError("upstream closed the connection before the answer ended".into())),
        }
    }
}

fn take(buf: &mut BytesMut, n: usize) -> Bytes {
    let data = Bytes::copy_from_slice(&buf[..n]);
    buf.advance(n);
    data
}

/// A CRLF-terminated line off the front of `buf` (without its CRLF).
fn take_line(buf: &mut BytesMut, max: usize) -> Result<Option<Vec<u8>>, WireError> {
    match memchr::memmem::find(buf, b"\r\n") {
        Some(at) => {
            let line = buf[..at].to_vec();
            buf.advance(at + 2);
            Ok(Some(line))
        }
        None if buf.len() > max => Err(WireError("line too long in a chunked body".into())),
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn parse(text: &str) -> Result<Option<Head>, WireError> {
        parse_head(&mut BytesMut::from(text), &http::Method::POST)
    }

    fn body(framing: Framing, wire: &[u8]) -> (Vec<u8>, bool) {
        let mut d = Decoder::new(framing);
        let (mut out, mut buf) = (Vec::new(), BytesMut::new());
        // Byte by byte: every split point of the framing is crossed.
        for b in wire {
            buf.extend_from_slice(&[*b]);
            while let Step::Data(data) = d.step(&mut buf).unwrap() {
                out.extend_from_slice(&data);
            }
        }
        (out, d.is_done())
    }

    #[test]
    fn the_request_head_is_in_origin_form_with_host_and_length() {
        let req = http::Request::post("http://127.0.0.1:8000/v1/chat/completions?x=1")
            .header("content-type", "application/json")
            .body(())
            .unwrap();
        let (parts, ()) = req.into_parts();
        let head = String::from_utf8(encode_head(&parts, 12, "127.0.0.1:8000")).unwrap();
        assert_eq!(
            head,
            "POST /v1/chat/completions?x=1 HTTP/1.1\r\nhost: 127.0.0.1:8000\r\ncontent-type: application/json\r\ncontent-length: 12\r\n\r\n"
        );
        let (parts, ()) = http::Request::get("http://h/models").header("host", "h").body(()).unwrap().into_parts();
        assert_eq!(
            String::from_utf8(encode_head(&parts, 0, "ignored")).unwrap(),
            "GET /models HTTP/1.1\r\nhost: h\r\n\r\n"
        );
    }

    #[test]
    fn heads_are_parsed_with_their_framing_and_keep_alive() {
        assert!(parse("HTTP/1.1 200 OK\r\ncontent-le").unwrap().is_none());
        let h = parse("HTTP/1.1 200 OK\r\ncontent-length: 5\r\nx-a: 1\r\n\r\nhello").unwrap().unwrap();
        assert_eq!((h.status.as_u16(), h.framing, h.keep_alive), (200, Framing::Length(5), true));
        assert_eq!(h.headers["x-a"], "1");
        let h = parse("HTTP/1.1 200 OK\r\ntransfer-encoding: gzip, chunked\r\n\r\n").unwrap().unwrap();
        assert_eq!(h.framing, Framing::Chunked);
        let h = parse("HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 0\r\n\r\n").unwrap().unwrap();
        assert!(!h.keep_alive);
        let h = parse("HTTP/1.0 200 OK\r\ncontent-length: 1\r\n\r\n").unwrap().unwrap();
        assert!(!h.keep_alive);
        let h = parse("HTTP/1.1 200 OK\r\n\r\n").unwrap().unwrap();
        assert_eq!((h.framing, h.keep_alive), (Framing::Close, false));
        let h = parse("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n").unwrap().unwrap();
        assert_eq!((h.status.as_u16(), h.framing), (204, Framing::Length(0)));
    }

    #[test]
    fn bad_heads_are_errors() {
        assert!(parse("HTTX/1.1 200 OK\r\n\r\n").is_err());
        assert!(parse("HTTP/1.1 200 OK\r\ncontent-length: x\r\n\r\n").is_err());
        assert!(parse("HTTP/1.1 200 OK\r\ncontent-length: 1\r\ncontent-length: 2\r\n\r\n").is_err());
        assert!(parse("HTTP/1.1 101 Switching Protocols\r\n\r\n").is_err());
        let huge = format!("HTTP/1.1 200 OK\r\nx: {}", "a".repeat(MAX_HEAD));
        assert!(parse(&huge).is_err());
    }

    #[test]
    fn bodies_are_decoded_across_any_split() {
        assert_eq!(body(Framing::Length(5), b"hello"), (b"hello".to_vec(), true));
        let chunked = b"5;ext=1\r\nhello\r\n1\r\n \r\n6\r\nworld!\r\n0\r\nx-trailer: 1\r\n\r\n";
        assert_eq!(body(Framing::Chunked, chunked), (b"hello world!".to_vec(), true));
        assert_eq!(body(Framing::Chunked, b"5\r\nhel"), (b"hel".to_vec(), false));
        assert_eq!(body(Framing::Length(0), b""), (Vec::new(), true));
    }

    #[test]
    fn bad_chunks_are_errors_and_an_early_close_is_one() {
        for wire in [&b"zz\r\n"[..], b"5\r\nhelloXX", b"11111111111111111\r\n"] {
            let mut d = Decoder::new(Framing::Chunked);
            let mut buf = BytesMut::from(wire);
            let mut result = Ok(Step::NeedMore);
            for _ in 0..4 {
                result = d.step(&mut buf);
                if !matches!(result, Ok(Step::Data(_))) {
                    break;
                }
            }
            assert!(result.is_err(), "{wire:?}");
        }
        let mut d = Decoder::new(Framing::Length(5));
        assert!(d.eof().is_err());
        let mut d = Decoder::new(Framing::Close);
        assert!(d.eof().is_ok());
        assert!(d.is_done());
    }
}
