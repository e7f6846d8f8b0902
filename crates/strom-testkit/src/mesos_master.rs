//! A scripted Mesos master for tests: an HTTP/1.1 server on 127.0.0.1:0 that speaks the v1
//! scheduler API's documented wire format (`docs/scheduler-http-api.md`): a SUBSCRIBE call is
//! answered 200 with a `Mesos-Stream-Id` header and a chunked body of RecordIO-framed JSON
//! events, starting with SUBSCRIBED; every other call is recorded with the stream id it carried
//! and answered 202 on a keep-alive connection. The test pushes events (or hostile bytes) into
//! the current stream and drops it at will. Not a Mesos master: it allocates nothing and checks
//! nothing beyond what the test asserts.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// One recorded call.
#[derive(Clone, Debug)]
pub struct Recorded {
    /// The `Mesos-Stream-Id` header, if any.
    pub stream_id: Option<String>,
    /// The JSON body.
    pub body: Value,
}

#[derive(Default)]
struct State {
    subscribes: Vec<Value>,
    calls: Vec<Recorded>,
    stream: Option<TcpStream>,
    streams_opened: u64,
    heartbeat_seconds: f64,
}

/// See the module documentation.
pub struct ScriptedMaster {
    /// Where it listens.
    pub address: SocketAddr,
    state: Arc<Mutex<State>>,
}

/// The framework id the master assigns to a new framework.
pub const NEW_FRAMEWORK_ID: &str = "20261205-000000-0000-fw-0001";

fn chunk(data: &[u8]) -> Vec<u8> {
    let mut out = format!("{:x}\r\n", data.len()).into_bytes();
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
    out
}

fn recordio(event: &Value) -> Vec<u8> {
    let text = event.to_string();
    let mut out = format!("{}\n", text.len()).into_bytes();
    out.extend_from_slice(text.as_bytes());
    out
}

impl ScriptedMaster {
    /// Starts listening; SUBSCRIBED events name `heartbeat_seconds`.
    pub fn start(heartbeat_seconds: f64) -> ScriptedMaster {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let address = listener.local_addr().expect("address");
        let state = Arc::new(Mutex::new(State {
            heartbeat_seconds,
            ..State::default()
        }));
        let shared = Arc::clone(&state);
        std::thread::spawn(move || {
            for connection in listener.incoming() {
                let Ok(connection) = connection else { return };
                let state = Arc::clone(&shared);
                std::thread::spawn(move || serve(connection, state));
            }
        });
        ScriptedMaster { address, state }
    }

    /// `http://127.0.0.1:port`.
    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// Sends an event on the current stream; false if there is none or it broke.
    pub fn send(&self, event: Value) -> bool {
        self.send_raw(&recordio(&event))
    }

    /// Sends raw bytes (one HTTP chunk) on the current stream.
    pub fn send_raw(&self, bytes: &[u8]) -> bool {
        let mut state = self.state.lock().unwrap();
        match state.stream.as_mut() {
            Some(stream) => stream.write_all(&chunk(bytes)).is_ok(),
            None => false,
        }
    }

    /// Breaks the current event stream (a network failure as the scheduler sees it).
    pub fn drop_stream(&self) {
        if let Some(stream) = self.state.lock().unwrap().stream.take() {
            let _ = stream.shutdown(Shutdown::Both);
        }
    }

    /// SUBSCRIBE calls received so far.
    pub fn subscribes(&self) -> Vec<Value> {
        self.state.lock().unwrap().subscribes.clone()
    }

    /// How many streams were opened.
    pub fn streams_opened(&self) -> u64 {
        self.state.lock().unwrap().streams_opened
    }

    /// Every other call received so far, in order.
    pub fn calls(&self) -> Vec<Recorded> {
        self.state.lock().unwrap().calls.clone()
    }

    /// The calls of one type.
    pub fn calls_of(&self, kind: &str) -> Vec<Recorded> {
        self.calls()
            .into_iter()
            .filter(|c| c.body["type"] == kind)
            .collect()
    }
}

impl Drop for ScriptedMaster {
    fn drop(&mut self) {
        self.drop_stream();
    }
}

/// Lower-cased header names with their values, and the body.
type Request = (Vec<(String, String)>, Vec<u8>);

/// A non-leading master: answers every request with `307 Temporary Redirect` to `location`
/// (as Mesos does, e.g. `//host:port/api/v1/scheduler`). Returns its `http://` URL.
pub fn start_redirecting(location: String) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("address"));
    std::thread::spawn(move || {
        for connection in listener.incoming() {
            let Ok(connection) = connection else { return };
            let mut writer = connection.try_clone().expect("clone");
            let mut reader = BufReader::new(connection);
            if read_request(&mut reader).is_some() {
                let _ = write!(
                    writer,
                    "HTTP/1.1 307 Temporary Redirect\r\nLocation: {location}\r\n\
                     Content-Length: 0\r\nConnection: close\r\n\r\n"
                );
            }
        }
    });
    url
}

fn read_request(reader: &mut BufReader<TcpStream>) -> Option<Request> {
    let mut line = String::new();
    if reader.read_line(&mut line).ok()? == 0 || !line.starts_with("POST /api/v1/scheduler ") {
        return None;
    }
    let mut headers = Vec::new();
    loop {
        line.clear();
        reader.read_line(&mut line).ok()?;
        let trimmed = line.trim_end();
        if trimmed.is_empty() {
            break;
        }
        let (name, value) = trimmed.split_once(':')?;
        headers.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
    }
    let length: usize = headers
        .iter()
        .find(|(n, _)| n == "content-length")?
        .1
        .parse()
        .ok()?;
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    Some((headers, body))
}

fn serve(connection: TcpStream, state: Arc<Mutex<State>>) {
    let _ = connection.set_read_timeout(Some(Duration::from_secs(30)));
    let mut writer = connection.try_clone().expect("clone");
    let mut reader = BufReader::new(connection);
    while let Some((headers, body)) = read_request(&mut reader) {
        let Ok(call) = serde_json::from_slice::<Value>(&body) else {
            let _ =
                writer.write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 8\r\n\r\nnot json");
            continue;
        };
        if call["type"] == "SUBSCRIBE" {
            let mut state = state.lock().unwrap();
            state.subscribes.push(call.clone());
            state.streams_opened += 1;
            let stream_id = format!("stream-{}", state.streams_opened);
            let framework_id = call["subscribe"]["framework_info"]["id"]["value"]
                .as_str()
                .unwrap_or(NEW_FRAMEWORK_ID)
                .to_string();
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\
                 Transfer-Encoding: chunked\r\nMesos-Stream-Id: {stream_id}\r\n\r\n"
            );
            let subscribed = json!({"type": "SUBSCRIBED", "subscribed": {
                "framework_id": {"value": framework_id},
                "heartbeat_interval_seconds": state.heartbeat_seconds,
            }});
            let mut out = head.into_bytes();
            out.extend(chunk(&recordio(&subscribed)));
            if writer.write_all(&out).is_ok() {
                if let Some(old) = state.stream.replace(writer) {
                    let _ = old.shutdown(Shutdown::Both);
                }
            }
            return;
        }
        let stream_id = headers
            .iter()
            .find(|(n, _)| n == "mesos-stream-id")
            .map(|(_, v)| v.clone());
        state.lock().unwrap().calls.push(Recorded {
            stream_id,
            body: call,
        });
        if writer
            .write_all(b"HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n")
            .is_err()
        {
            return;
        }
    }
}

/// Waits up to `limit` for `done`, running `step` between checks; panics naming `what`.
pub fn wait_until(what: &str, limit: Duration, mut step: impl FnMut() -> bool) {
    let started = Instant::now();
    while started.elapsed() < limit {
        if step() {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("timed out after {limit:?} waiting for {what}");
}
