//! The client half of the RPC homework: `client.call::<i64>("func1",
//! [1, 2, 3])` sends one JSON-RPC 2.0 request as one line and returns the
//! typed result, or an [`Error`] that carries the server's code, message and
//! data. The command `rpc-call 127.0.0.1:9090 func1 1 2 3` is built on it.
//!
//! One call at a time: `call` writes its line and reads lines until the
//! reply with its id comes back (the server answers in order, so that is the
//! next one). A client with several calls in flight is an exercise in the
//! book.

use std::fmt::Display;
use std::io::{self, BufRead, BufReader, Write};
use std::net::{TcpStream, ToSocketAddrs};

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

/// One connection to an RPC server.
#[derive(Debug)]
pub struct Client {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
    next_id: u64,
}

/// Why a call has no result.
#[derive(Debug)]
pub enum Error {
    /// The server answered with an error: `code` is JSON-RPC's (-32601 no
    /// such method, -32602 bad params, -32000 the function failed...),
    /// `data` usually `{"type": "ZeroDivisionError", "message": ...}`.
    Remote {
        code: i64,
        message: String,
        data: Value,
    },
    /// The server closed the connection before it answered.
    Closed,
    /// Sending or receiving failed.
    Io(io::Error),
    /// The reply was not the JSON-RPC response we wait for, or its result
    /// does not have the type the caller asked for (or the params could
    /// not be made JSON).
    BadReply(String),
}

impl Error {
    /// `data.type` of a remote error (`ZeroDivisionError`, `TypeError`...).
    pub fn kind(&self) -> Option<&str> {
        match self {
            Error::Remote { data, .. } => data.get("type").and_then(Value::as_str),
            _ => None,
        }
    }
}

impl Display for Error {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::Remote {
                code,
                message,
                data,
            } => {
                write!(formatter, "remote error {code} ({message})")?;
                match (data.get("type"), data.get("message")) {
                    (Some(Value::String(kind)), Some(Value::String(text))) => {
                        write!(formatter, ": {kind}: {text}")
                    }
                    (_, _) if data.is_null() => Ok(()),
                    (_, _) => write!(formatter, ": {data}"),
                }
            }
            Error::Closed => write!(formatter, "the server closed the connection"),
            Error::Io(error) => write!(formatter, "{error}"),
            Error::BadReply(why) => write!(formatter, "bad reply: {why}"),
        }
    }
}

impl std::error::Error for Error {}

impl From<io::Error> for Error {
    fn from(error: io::Error) -> Error {
        Error::Io(error)
    }
}

impl Client {
    pub fn connect(addr: impl ToSocketAddrs) -> io::Result<Client> {
        let writer = TcpStream::connect(addr)?;
        // Requests are small and each waits for its reply: send at once.
        writer.set_nodelay(true)?;
        Ok(Client {
            reader: BufReader::new(writer.try_clone()?),
            writer,
            next_id: 1,
        })
    }

    /// Calls `method` with `params` (a list, a tuple or a struct/map for
    /// named params) and returns its result as a `T`.
    // ANCHOR: call
    pub fn call<T: DeserializeOwned>(
        &mut self,
        method: &str,
        params: impl Serialize,
    ) -> Result<T, Error> {
        let id = self.next_id;
        self.next_id += 1;
        self.send(request(method, params, Some(id))?)?;
        let mut reply = self.receive()?;
        if reply.get("id") != Some(&json!(id)) {
            return Err(Error::BadReply(format!(
                "expected the reply to {id}: {reply}"
            )));
        }
        if let Some(error) = reply.get_mut("error") {
            let code = error.get("code").and_then(Value::as_i64).unwrap_or(0);
            let message = error
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned();
            let data = error
                .get_mut("data")
                .map(Value::take)
                .unwrap_or(Value::Null);
            return Err(Error::Remote {
                code,
                message,
                data,
            });
        }
        let result = reply.get_mut("result").map(Value::take);
        let result = result.ok_or_else(|| Error::BadReply(format!("no result: {reply}")))?;
        serde_json::from_value(result).map_err(|error| Error::BadReply(error.to_string()))
    }
    // ANCHOR_END: call

    /// A notification: the server runs `method` and sends nothing back.
    pub fn notify(&mut self, method: &str, params: impl Serialize) -> Result<(), Error> {
        self.send(request(method, params, None)?)
    }

    fn send(&mut self, message: Value) -> Result<(), Error> {
        let mut line = message.to_string().into_bytes();
        line.push(b'\n');
        self.writer
            .write_all(&line)
            .map_err(|error| match error.kind() {
                io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset => Error::Closed,
                _ => Error::Io(error),
            })
    }

    fn receive(&mut self) -> Result<Value, Error> {
        let mut line = String::new();
        match self.reader.read_line(&mut line) {
            Ok(0) => Err(Error::Closed),
            Ok(_) => serde_json::from_str(&line)
                .map_err(|error| Error::BadReply(format!("{error}: {}", line.trim_end()))),
            Err(error) if error.kind() == io::ErrorKind::ConnectionReset => Err(Error::Closed),
            Err(error) => Err(Error::Io(error)),
        }
    }
}

/// The request object; params that serialize to nothing (`()`) are left
/// out, and no `id` makes it a notification.
fn request(method: &str, params: impl Serialize, id: Option<u64>) -> Result<Value, Error> {
    let params =
        serde_json::to_value(params).map_err(|error| Error::BadReply(error.to_string()))?;
    let mut request = json!({"jsonrpc": "2.0", "method": method});
    if !params.is_null() {
        request["params"] = params;
    }
    if let Some(id) = id {
        request["id"] = id.into();
    }
    Ok(request)
}

/// An argument as typed on a command line: JSON if it parses (`1`,
/// `[1,2]`, `"x"`, `null`), otherwise the text as a string (`hello`).
pub fn parse_argument(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_owned()))
}

#[cfg(test)]
mod tests;
