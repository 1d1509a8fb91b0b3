//! What the pipeline hands back to the server: status, the gateway's own
//! headers, and a body that is either whole or a stream of SSE frames.

use bytes::Bytes;
use futures_util::stream::BoxStream;

pub struct Reply {
    pub status: u16,
    /// `x-switchyard-*` headers; the server adds `x-request-id`.
    pub headers: Vec<(&'static str, String)>,
    pub body: ReplyBody,
}

pub enum ReplyBody {
    /// A JSON document.
    Json(Bytes),
    /// `text/event-stream` frames, each a whole SSE event.
    Stream(BoxStream<'static, Result<Bytes, std::convert::Infallible>>),
}
