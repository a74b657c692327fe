//! Answers written while they are made: a blocking writer fills 64 KiB pieces that a
//! small queue hands to the response body, so a large file is never held whole.

use axum::body::Body;
use bytes::{Bytes, BytesMut};
use tokio::sync::mpsc;

/// The size of a piece sent.
const PIECE: usize = 64 * 1024;

/// `std::io::Write` into a response body. Blocking: use it on a blocking thread. A body
/// gone (the client left) makes writes fail with a broken pipe, which stops the writer.
/// What is buffered is sent on `flush` and when the writer is dropped.
pub struct BodyWriter {
    tx: mpsc::Sender<std::io::Result<Bytes>>,
    buf: BytesMut,
}

/// Ends a body with an error from outside its writer: the client sees the answer cut
/// short rather than a complete-looking file.
#[derive(Clone)]
pub struct BodyFailure(mpsc::Sender<std::io::Result<Bytes>>);

impl BodyFailure {
    /// Cuts the answer short, logging why.
    pub async fn fail(self, what: &str, e: impl std::fmt::Display) {
        tracing::warn!(error = %e, "{what} stopped");
        let _ = self.0.send(Err(std::io::Error::other(e.to_string()))).await;
    }
}

impl BodyWriter {
    /// A handle that ends the body with an error.
    pub fn failure(&self) -> BodyFailure {
        BodyFailure(self.tx.clone())
    }

    fn send(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let piece = self.buf.split().freeze();
        self.tx.blocking_send(Ok(piece)).map_err(|_| std::io::Error::from(std::io::ErrorKind::BrokenPipe))
    }
}

impl std::io::Write for BodyWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= PIECE {
            self.send()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.send()
    }
}

impl Drop for BodyWriter {
    fn drop(&mut self) {
        let _ = self.send();
    }
}

/// A writer and the body that sends what it writes.
pub fn body_writer() -> (BodyWriter, Body) {
    let (tx, mut rx) = mpsc::channel(4);
    let body = Body::from_stream(futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx)));
    (BodyWriter { tx, buf: BytesMut::with_capacity(PIECE) }, body)
}
