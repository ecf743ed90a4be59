//! A tiny blocking HTTP/1.1 client over `std::net::TcpStream`, strict enough to tell a broken
//! response (dropped connection, short body) from a good one.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use serde_json::Value;

#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Whether the whole declared body arrived (Content-Length met, or final chunk seen).
    pub complete: bool,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }

    /// `<url>` of `rel="name"` in the `Link` header.
    pub fn link(&self, rel: &str) -> Option<String> {
        let link = self.header("link")?;
        link.split(", <").find_map(|part| {
            let part = part.trim_start_matches('<');
            let (url, params) = part.split_once(">;")?;
            params
                .contains(&format!("rel=\"{rel}\""))
                .then(|| url.to_string())
        })
    }
}

/// Splits `http://host:port/path?q` into (`host:port`, `/path?q`).
pub fn split_url(url: &str) -> (String, String) {
    let rest = url.strip_prefix("http://").expect("http:// URL");
    match rest.find('/') {
        Some(i) => (rest[..i].to_string(), rest[i..].to_string()),
        None => (rest.to_string(), "/".to_string()),
    }
}

/// Sends one request (`Connection: close`) and reads the whole answer. `Err` when the
/// connection ends before a complete response head arrives.
pub fn request(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> io::Result<Resp> {
    let (host, target) = split_url(url);
    assert!(host.starts_with("127.0.0.1:"), "only loopback: {host}");
    let mut s = TcpStream::connect(&host)?;
    s.set_read_timeout(Some(Duration::from_secs(20)))?;
    let mut head = format!("{method} {target} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    if let Some(b) = body {
        head.push_str(&format!("Content-Length: {}\r\n", b.len()));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes())?;
    if let Some(b) = body {
        s.write_all(b)?;
    }
    let mut raw = Vec::new();
    let mut buf = [0u8; 16384];
    loop {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => raw.extend_from_slice(&buf[..n]),
            // A reset after some bytes still lets us inspect what arrived.
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset && !raw.is_empty() => break,
            Err(e) => return Err(e),
        }
    }
    parse(&raw)
}

fn parse(raw: &[u8]) -> io::Result<Resp> {
    let eof = |m: &str| io::Error::new(io::ErrorKind::UnexpectedEof, m.to_string());
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| eof(&format!("no complete response head ({} bytes)", raw.len())))?;
    let head = String::from_utf8_lossy(&raw[..end]);
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or("");
    let status: u16 = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| eof(&format!("bad status line {status_line:?}")))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let rest = &raw[end + 4..];
    let get = |n: &str| {
        headers
            .iter()
            .find(|(k, _)| k == n)
            .map(|(_, v)| v.as_str())
    };
    let (body, complete) = if get("transfer-encoding").is_some_and(|t| t.contains("chunked")) {
        dechunk(rest)
    } else if let Some(cl) = get("content-length").and_then(|v| v.parse::<usize>().ok()) {
        (rest[..rest.len().min(cl)].to_vec(), rest.len() >= cl)
    } else {
        (rest.to_vec(), true)
    };
    Ok(Resp {
        status,
        headers,
        body,
        complete,
    })
}

fn dechunk(mut data: &[u8]) -> (Vec<u8>, bool) {
    let mut out = Vec::new();
    loop {
        let Some(line_end) = data.windows(2).position(|w| w == b"\r\n") else {
            return (out, false);
        };
        let size_str = String::from_utf8_lossy(&data[..line_end]);
        let Ok(size) = usize::from_str_radix(size_str.split(';').next().unwrap_or("").trim(), 16)
        else {
            return (out, false);
        };
        data = &data[line_end + 2..];
        if size == 0 {
            return (out, true);
        }
        if data.len() < size + 2 {
            out.extend_from_slice(&data[..data.len().min(size)]);
            return (out, false);
        }
        out.extend_from_slice(&data[..size]);
        data = &data[size + 2..];
    }
}

pub fn get(url: &str) -> Resp {
    get_with(url, &[])
}

pub fn get_with(url: &str, headers: &[(&str, &str)]) -> Resp {
    request("GET", url, headers, None).unwrap_or_else(|e| panic!("GET {url}: {e}"))
}

pub fn post(url: &str, headers: &[(&str, &str)], body: &str) -> Resp {
    request("POST", url, headers, Some(body.as_bytes()))
        .unwrap_or_else(|e| panic!("POST {url}: {e}"))
}

/// The `id`s of a JSON array of records.
pub fn ids(v: &Value) -> Vec<u64> {
    v.as_array()
        .unwrap_or_else(|| panic!("not an array: {v}"))
        .iter()
        .map(|r| r["id"].as_u64().expect("integer id"))
        .collect()
}

/// A response whose body is read on demand (for bodies too big, or too endless, to collect).
pub struct Streaming {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    /// The body with the transfer coding removed (content coding, e.g. gzip, left as is).
    pub body: Box<dyn Read>,
}

impl Streaming {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Reads exactly `n` bytes of the body (panics if it ends first).
    pub fn read_exact(&mut self, n: usize) -> Vec<u8> {
        let mut out = vec![0u8; n];
        self.body
            .read_exact(&mut out)
            .unwrap_or_else(|e| panic!("body ended before {n} bytes: {e}"));
        out
    }
}

/// Sends a GET and returns once the response head has arrived; the body is read lazily.
/// Dropping the result closes the connection.
pub fn open(url: &str, headers: &[(&str, &str)]) -> io::Result<Streaming> {
    use std::io::BufRead;
    let (host, target) = split_url(url);
    assert!(host.starts_with("127.0.0.1:"), "only loopback: {host}");
    let mut s = TcpStream::connect(&host)?;
    s.set_read_timeout(Some(Duration::from_secs(20)))?;
    let mut head = format!("GET {target} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes())?;
    let mut r = io::BufReader::with_capacity(64 * 1024, s);
    let mut line = String::new();
    r.read_line(&mut line)?;
    let status: u16 = line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, format!("{line:?}")))?;
    let mut headers = Vec::new();
    loop {
        line.clear();
        if r.read_line(&mut line)? == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "head cut short",
            ));
        }
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        if let Some((k, v)) = l.split_once(':') {
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }
    let get = |n: &str| headers.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
    let body: Box<dyn Read> = if get("transfer-encoding").is_some_and(|t| t.contains("chunked")) {
        Box::new(Chunked {
            inner: r,
            left: 0,
            started: false,
            done: false,
        })
    } else if let Some(cl) = get("content-length").and_then(|v| v.parse::<u64>().ok()) {
        Box::new(r.take(cl))
    } else {
        Box::new(r)
    };
    Ok(Streaming {
        status,
        headers,
        body,
    })
}

/// Decodes `Transfer-Encoding: chunked` on the fly.
struct Chunked<R> {
    inner: R,
    /// Bytes left in the current chunk.
    left: usize,
    started: bool,
    done: bool,
}

impl<R: io::BufRead> Read for Chunked<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.done || buf.is_empty() {
            return Ok(0);
        }
        if self.left == 0 {
            let mut line = String::new();
            if self.started {
                // The CRLF that ends the previous chunk.
                self.inner.read_line(&mut line)?;
                line.clear();
            }
            self.started = true;
            if self.inner.read_line(&mut line)? == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "no chunk size",
                ));
            }
            let size = line.trim().split(';').next().unwrap_or("");
            self.left = usize::from_str_radix(size, 16).map_err(|_| {
                io::Error::new(io::ErrorKind::InvalidData, format!("chunk size {line:?}"))
            })?;
            if self.left == 0 {
                self.done = true;
                return Ok(0);
            }
        }
        let want = buf.len().min(self.left);
        let n = self.inner.read(&mut buf[..want])?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "chunk cut short",
            ));
        }
        self.left -= n;
        Ok(n)
    }
}
