//! A minimal client of etcd's v3 JSON gateway (`POST /v3/kv/put` over HTTP/1.1 with
//! keep-alive), so the load generator can drive an etcd cluster with the same closed loop
//! it drives rsm with. Only what a put benchmark needs: no watch, no auth, no TLS.

use std::net::SocketAddr;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

/// The longest response header line or body accepted.
const RESPONSE_BYTES_MAX: usize = 1 << 20;

/// One keep-alive connection to one etcd member.
pub struct EtcdClient {
    addr: SocketAddr,
    connection: Option<(BufReader<OwnedReadHalf>, OwnedWriteHalf)>,
    request: Vec<u8>,
    line: String,
}

impl EtcdClient {
    pub fn new(addr: SocketAddr) -> Self {
        Self {
            addr,
            connection: None,
            request: Vec::new(),
            line: String::new(),
        }
    }

    /// Put `value` at `key`; an error drops the connection (the next put reconnects).
    pub async fn put(&mut self, key: &[u8], value: &[u8]) -> std::io::Result<()> {
        let outcome = self.exchange(key, value).await;
        if outcome.is_err() {
            self.connection = None;
        }
        outcome
    }

    async fn exchange(&mut self, key: &[u8], value: &[u8]) -> std::io::Result<()> {
        if self.connection.is_none() {
            let stream = TcpStream::connect(self.addr).await?;
            stream.set_nodelay(true)?;
            let (read, write) = stream.into_split();
            self.connection = Some((BufReader::new(read), write));
        }
        let Some((read, write)) = self.connection.as_mut() else {
            return Err(std::io::Error::other("no connection"));
        };
        let body = format!(r#"{{"key":"{}","value":"{}"}}"#, base64(key), base64(value));
        self.request.clear();
        self.request.extend_from_slice(
            format!(
                "POST /v3/kv/put HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
                self.addr,
                body.len()
            )
            .as_bytes(),
        );
        self.request.extend_from_slice(body.as_bytes());
        write.write_all(&self.request).await?;

        let line = &mut self.line;
        read_line(read, line).await?;
        if !line.starts_with("HTTP/1.1 200") {
            return Err(std::io::Error::other(format!(
                "etcd answered {}",
                line.trim()
            )));
        }
        let mut length = None;
        let mut chunked = false;
        loop {
            read_line(read, line).await?;
            let header = line.trim_end().to_ascii_lowercase();
            if header.is_empty() {
                break;
            }
            if let Some(v) = header.strip_prefix("content-length:") {
                length = v.trim().parse::<usize>().ok();
            } else if header.starts_with("transfer-encoding:") && header.contains("chunked") {
                chunked = true;
            }
        }
        if chunked {
            loop {
                read_line(read, line).await?;
                let size = usize::from_str_radix(line.trim(), 16)
                    .map_err(|_| std::io::Error::other("bad chunk size"))?;
                skip(read, size + 2).await?;
                if size == 0 {
                    return Ok(());
                }
            }
        }
        match length {
            Some(n) => skip(read, n).await,
            None => Err(std::io::Error::other("response without a length")),
        }
    }
}

async fn read_line(read: &mut BufReader<OwnedReadHalf>, line: &mut String) -> std::io::Result<()> {
    line.clear();
    let n = read.read_line(line).await?;
    if n == 0 {
        return Err(std::io::ErrorKind::UnexpectedEof.into());
    }
    if n > RESPONSE_BYTES_MAX {
        return Err(std::io::Error::other("response line too long"));
    }
    Ok(())
}

async fn skip(read: &mut BufReader<OwnedReadHalf>, n: usize) -> std::io::Result<()> {
    if n > RESPONSE_BYTES_MAX {
        return Err(std::io::Error::other("response body too large"));
    }
    let mut sink = vec![0u8; n];
    read.read_exact(&mut sink).await?;
    Ok(())
}

/// Standard base64 with padding, as the gateway's JSON encoding of bytes expects.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::base64;

    #[test]
    fn base64_matches_the_standard_alphabet_and_padding() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
    }
}
