//! The wire format: core-codec frames, and reading frames and hellos off a socket.
//!
//! Every frame has the [`Codec`] layout: `[FRAME_VERSION: u8][body length: u32 LE][body]`.
//! The first frame each way is a [`Hello`] (defined in rsm-core, shared by every transport);
//! every later frame's body is one message, passed through untouched.

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt};

use rsm_core::{Codec, CodecError, FRAME_HEADER_BYTES, HELLO_BYTES_MAX, Hello};

use crate::error::{Refusal, Refused};

/// Append one message frame to `out`. The caller has checked the body against the
/// configured maximum, which is at most `u32::MAX`.
pub(crate) fn push_frame(out: &mut Vec<u8>, body: &[u8]) {
    out.extend_from_slice(&frame_header(body.len()));
    out.extend_from_slice(body);
}

/// The header of a frame with a body of `len` bytes.
pub(crate) fn frame_header(len: usize) -> [u8; FRAME_HEADER_BYTES] {
    // Lengths are checked against the configured maximum when a message is queued; the
    // codec here only needs to accept anything a u32 can describe.
    Codec::new(u32::MAX as usize)
        .header(len)
        .expect("frame length checked at send")
}

/// Why reading a frame stopped.
#[derive(Debug)]
pub(crate) enum ReadError {
    /// The socket failed or closed mid-frame.
    Io(std::io::Error),
    /// The bytes are not an acceptable frame; the connection must close.
    Refused(Refused),
}

impl From<std::io::Error> for ReadError {
    fn from(e: std::io::Error) -> Self {
        ReadError::Io(e)
    }
}

/// The first step by which a frame body's buffer grows; later steps double it.
const BODY_STEP_BYTES_MIN: usize = 4096;

/// Read one frame body, `None` at a clean end of stream (between frames). The header is
/// checked before the body is read, so an oversized frame costs nothing but its header,
/// and the body's buffer grows with the bytes that arrive (doubling from
/// [`BODY_STEP_BYTES_MIN`]), never with the length the header announces.
pub(crate) async fn read_frame<R: AsyncRead + Unpin>(
    r: &mut R,
    codec: &Codec,
) -> Result<Option<Bytes>, ReadError> {
    let mut header = [0u8; FRAME_HEADER_BYTES];
    let mut filled = 0;
    while filled < header.len() {
        let n = r.read(&mut header[filled..]).await?;
        if n == 0 {
            if filled == 0 {
                return Ok(None);
            }
            return Err(ReadError::Io(std::io::ErrorKind::UnexpectedEof.into()));
        }
        filled += n;
    }
    let len = codec.peek_len(&header).map_err(|e| {
        let reason = match e {
            CodecError::TooLarge { .. } => Refusal::Oversized,
            _ => Refusal::Malformed,
        };
        ReadError::Refused(Refused::new(reason, e.to_string()))
    })?;
    let mut body = BytesMut::new();
    let mut rest = r.take(len as u64);
    while body.len() < len {
        if body.len() == body.capacity() {
            let step = body.len().max(BODY_STEP_BYTES_MIN);
            body.reserve(step.min(len - body.len()));
        }
        if rest.read_buf(&mut body).await? == 0 {
            return Err(ReadError::Io(std::io::ErrorKind::UnexpectedEof.into()));
        }
    }
    Ok(Some(body.freeze()))
}

/// Read and check a hello; a clean end of stream is an incomplete handshake.
pub(crate) async fn read_hello<R: AsyncRead + Unpin>(r: &mut R) -> Result<Hello, Refused> {
    let incomplete = |detail: String| Refused::new(Refusal::HandshakeIncomplete, detail);
    match read_frame(r, &Codec::new(HELLO_BYTES_MAX)).await {
        Ok(Some(body)) => Hello::parse(&body).map_err(Refused::from),
        Ok(None) => Err(incomplete("closed before the hello".into())),
        Err(ReadError::Io(e)) => Err(incomplete(format!("reading the hello: {e}"))),
        Err(ReadError::Refused(r)) => Err(r),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rsm_core::{NodeId, PROTOCOL_VERSION};

    async fn read_all(bytes: &[u8]) -> Result<Vec<Bytes>, ReadError> {
        let mut r = bytes;
        let codec = Codec::new(16);
        let mut out = Vec::new();
        while let Some(body) = read_frame(&mut r, &codec).await? {
            out.push(body);
        }
        Ok(out)
    }

    fn block_on<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a current-thread runtime")
            .block_on(f)
    }

    #[test]
    fn frames_match_the_core_codec_layout() {
        let mut ours = Vec::new();
        push_frame(&mut ours, b"abc");
        let mut header = [0u8; FRAME_HEADER_BYTES];
        header.copy_from_slice(&ours[..FRAME_HEADER_BYTES]);
        assert_eq!(Codec::default().peek_len(&header), Ok(3));
        assert_eq!(&ours[FRAME_HEADER_BYTES..], b"abc");
    }

    #[test]
    fn reads_back_to_back_frames_and_stops_at_a_clean_end() {
        let mut buf = Vec::new();
        push_frame(&mut buf, b"one");
        push_frame(&mut buf, b"");
        push_frame(&mut buf, b"three");
        let frames = block_on(read_all(&buf)).expect("valid frames");
        assert_eq!(frames, vec![&b"one"[..], &b""[..], &b"three"[..]]);
    }

    #[test]
    fn a_body_buffer_follows_the_bytes_that_arrived() {
        block_on(async {
            let (mut a, mut b) = tokio::io::duplex(1 << 16);
            let codec = Codec::new(16 << 20);
            tokio::io::AsyncWriteExt::write_all(&mut a, &frame_header(16 << 20))
                .await
                .unwrap();
            tokio::io::AsyncWriteExt::write_all(&mut a, b"abc")
                .await
                .unwrap();
            drop(a);
            // The stream ends 3 bytes into a body announced as 16 MiB: the reader must
            // have held no more than one small step of buffer for them.
            let mut held = 0;
            let mut counting = CountingReader {
                inner: &mut b,
                capacity_seen: &mut held,
            };
            assert!(matches!(
                read_frame(&mut counting, &codec).await,
                Err(ReadError::Io(_))
            ));
            assert!(held <= BODY_STEP_BYTES_MIN, "{held}");
        });
    }

    /// Records the largest buffer a reader offered to be filled.
    struct CountingReader<'a, R> {
        inner: &'a mut R,
        capacity_seen: &'a mut usize,
    }

    impl<R: AsyncRead + Unpin> AsyncRead for CountingReader<'_, R> {
        fn poll_read(
            self: std::pin::Pin<&mut Self>,
            cx: &mut std::task::Context<'_>,
            buf: &mut tokio::io::ReadBuf<'_>,
        ) -> std::task::Poll<std::io::Result<()>> {
            let this = self.get_mut();
            *this.capacity_seen = (*this.capacity_seen).max(buf.remaining());
            std::pin::Pin::new(&mut *this.inner).poll_read(cx, buf)
        }
    }

    #[test]
    fn refuses_oversized_and_garbage_and_reports_a_torn_frame() {
        let mut big = Vec::new();
        push_frame(&mut big, &[0; 17]);
        let refused = |r: Result<Vec<Bytes>, ReadError>| match r {
            Err(ReadError::Refused(r)) => Some(r.reason),
            _ => None,
        };
        assert_eq!(refused(block_on(read_all(&big))), Some(Refusal::Oversized));
        assert_eq!(
            refused(block_on(read_all(b"GET / HTTP/1.1\r\n"))),
            Some(Refusal::Malformed)
        );
        let mut torn = Vec::new();
        push_frame(&mut torn, b"four");
        torn.pop();
        assert!(matches!(block_on(read_all(&torn)), Err(ReadError::Io(_))));
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..128)) {
            let _ = block_on(read_all(&bytes));
            let _ = block_on(read_hello(&mut &bytes[..]));
        }

        #[test]
        fn arbitrary_hello_bodies_never_panic(body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..HELLO_BYTES_MAX)) {
            let mut framed = Vec::new();
            push_frame(&mut framed, &body);
            let _ = block_on(read_hello(&mut &framed[..]));
        }
    }

    #[test]
    fn hello_round_trips_and_rejects_strangers() {
        let hello = Hello::new(9, NodeId(3));
        let frame = hello.encode_frame().expect("a hello fits");
        assert_eq!(block_on(read_hello(&mut &frame[..])).ok(), Some(hello));

        let mut other = Hello::new(9, NodeId(3));
        other.protocol_version = PROTOCOL_VERSION + 1;
        let frame = other.encode_frame().expect("a hello fits");
        let reason = block_on(read_hello(&mut &frame[..])).map_err(|r| r.reason);
        assert_eq!(reason, Err(Refusal::BadProtocolVersion));

        other = Hello::new(9, NodeId(3));
        other.magic = *b"HTTP";
        let frame = other.encode_frame().expect("a hello fits");
        let reason = block_on(read_hello(&mut &frame[..])).map_err(|r| r.reason);
        assert_eq!(reason, Err(Refusal::BadMagic));

        let reason = block_on(read_hello(&mut &b""[..])).map_err(|r| r.reason);
        assert_eq!(reason, Err(Refusal::HandshakeIncomplete));
    }
}
