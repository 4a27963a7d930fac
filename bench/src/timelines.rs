//! `bench timelines`: who waits where, measured. For each model, three
//! clients connect at the same moment and each asks for the lab's page
//! once; the server runs with `--log debug`, and its own log lines
//! (`connect`, `recv`, `send`, `close`, with the worker that wrote them)
//! become one SVG per model: a row per client, bars for the time in the
//! listen queue, the wait for the fake DB and the answer going out. The
//! figures in the book are these files, so they show what happened, not
//! what the model should do.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use plotters::prelude::*;

use crate::compare::plot::{CAPTION_HEIGHT, WIDTH, draw_caption, text_style};
use crate::compare::results::Machine;
use crate::compare::scenarios::model_setup;
use crate::compare::server::{ModelServer, STARTUP_TIMEOUT, STOP_GRACE};

/// Three clients: enough to show one-by-one against all-at-once, and
/// 04-prefork's two processes on two cores serving three.
pub const CLIENTS: usize = 3;
const HEIGHT: u32 = 420;
/// Rows of room above the clients for the legend.
const LEGEND_ROOM: f64 = 1.3;
/// How long the clients may take in all (01 serves them one by one).
const CLIENT_TIMEOUT: Duration = Duration::from_secs(30);
/// After the last answer, how long to wait for the server's `close` lines.
const CLOSE_WAIT: Duration = Duration::from_secs(2);

/// What `bench timelines` was asked for.
#[derive(Clone, Debug)]
pub struct TimelineOptions {
    pub models: Vec<String>,
    pub bin_dir: PathBuf,
    pub out: PathBuf,
    pub db_latency: Duration,
    pub command: String,
}

/// What a debug line is about.
#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    Connect,
    Recv(usize),
    Send(usize),
    Close,
}

/// Which connection a debug line names.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Key {
    /// The client's address, as every driver but 11's logs it.
    Peer(SocketAddr),
    /// 11-io-uring accepts without asking for the address: its lines name
    /// the descriptor, or the slot of the connection table.
    Fd(i64),
    Slot(i64),
}

/// One debug line of a server: `   0.512s DEBUG pid=42 conn-3: recv 78 bytes from 127.0.0.1:5000`.
#[derive(Clone, Debug, PartialEq)]
pub struct LogLine {
    /// Seconds since the server started its logger.
    pub seconds: f64,
    /// `pid=42 conn-3`: the process and the thread that wrote it.
    pub worker: String,
    pub event: Event,
    /// `None` where the line names no connection (the blocking drivers
    /// before they named the peer): then it is the worker's open one.
    pub key: Option<Key>,
    /// 11-io-uring's `connect fd N (slot S)` ties the two together.
    pub slot: Option<i64>,
}

/// Parses one line of a server's stderr; `None` for every other line.
pub fn parse_line(line: &str) -> Option<LogLine> {
    let (seconds, rest) = line.trim_start().split_once("s DEBUG ")?;
    let seconds: f64 = seconds.parse().ok()?;
    let (worker, message) = rest.split_once(": ")?;
    let mut words = message.split_whitespace();
    let verb = words.next()?;
    let words: Vec<&str> = words.collect();
    let number = |word: Option<&&str>| word.and_then(|word| word.parse::<i64>().ok());
    let peer = |word: Option<&&str>| {
        word.and_then(|word| word.trim_end_matches(':').parse::<SocketAddr>().ok())
            .map(Key::Peer)
    };
    let slot = words
        .iter()
        .position(|word| *word == "(slot")
        .and_then(|at| words.get(at + 1))
        .and_then(|word| word.trim_end_matches(')').parse().ok());
    let (event, key) = match verb {
        "connect" if words.first() == Some(&"fd") => {
            (Event::Connect, number(words.get(1)).map(Key::Fd))
        }
        "connect" => (Event::Connect, peer(words.first())),
        "close" if words.first() == Some(&"slot") => {
            (Event::Close, number(words.get(1)).map(Key::Slot))
        }
        "close" => (Event::Close, peer(words.first())),
        "recv" | "send" => {
            let bytes = usize::try_from(number(words.first())?).ok()?;
            if words.get(1) != Some(&"bytes") {
                return None;
            }
            let key = match words.get(2) {
                Some(&"from" | &"to") => peer(words.get(3)),
                Some(&"on") => number(words.get(4)).map(Key::Fd),
                _ => None,
            };
            let event = if verb == "recv" {
                Event::Recv(bytes)
            } else {
                Event::Send(bytes)
            };
            (event, key)
        }
        _ => return None,
    };
    Some(LogLine {
        seconds,
        worker: worker.to_string(),
        event,
        key,
        slot,
    })
}

/// One connection as the server saw it, in seconds of the server's clock.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Served {
    pub peer: Option<SocketAddr>,
    pub worker: String,
    pub connect: f64,
    /// The first bytes of the request read.
    pub recv: Option<f64>,
    /// The last bytes of the answer written.
    pub send: Option<f64>,
    pub close: Option<f64>,
}

/// Groups a server's debug lines by connection, in the order it accepted
/// them.
pub fn connections(log: &str) -> Vec<Served> {
    let mut served: Vec<Served> = Vec::new();
    let mut by_key: HashMap<Key, usize> = HashMap::new();
    // A line without a key belongs to the connection its worker has open:
    // a blocking worker serves one at a time.
    let mut by_worker: HashMap<String, usize> = HashMap::new();
    for line in log.lines().filter_map(parse_line) {
        if line.event == Event::Connect {
            let index = served.len();
            served.push(Served {
                peer: match line.key {
                    Some(Key::Peer(peer)) => Some(peer),
                    _ => None,
                },
                worker: line.worker.clone(),
                connect: line.seconds,
                ..Served::default()
            });
            if let Some(key) = line.key {
                by_key.insert(key, index);
            }
            if let Some(slot) = line.slot {
                by_key.insert(Key::Slot(slot), index);
            }
            by_worker.insert(line.worker, index);
            continue;
        }
        let index = match &line.key {
            Some(key) => by_key.get(key),
            None => by_worker.get(&line.worker),
        };
        let Some((index, connection)) = index
            .copied()
            .and_then(|index| Some((index, served.get_mut(index)?)))
        else {
            continue;
        };
        match line.event {
            Event::Recv(_) => {
                connection.recv.get_or_insert(line.seconds);
            }
            Event::Send(_) => connection.send = Some(line.seconds),
            Event::Close => {
                connection.close = Some(line.seconds);
                // Descriptors, slots and ports are used again later.
                by_key.retain(|_, open| *open != index);
            }
            Event::Connect => {}
        }
    }
    served
}

/// One client as it saw its request, in its own clock.
#[derive(Clone, Debug)]
pub struct Client {
    /// Its address: the peer in the server's log.
    pub local: SocketAddr,
    pub connected: Instant,
    pub sent: Instant,
    /// The whole answer read (the server closed after it).
    pub answered: Instant,
    /// The answer's `X-Worker` (`pid=42 thread=conn-3`): who served it,
    /// also where the log cannot say (08's coroutines run on unnamed
    /// threads).
    pub worker: Option<String>,
}

/// Three clients that connect at the same moment, each send one `GET /`
/// with `Connection: close` and read the answer to its end.
pub fn run_clients(addr: SocketAddr, count: usize) -> anyhow::Result<Vec<Client>> {
    let start = Arc::new(Barrier::new(count));
    let threads: Vec<_> = (0..count)
        .map(|_| {
            let start = Arc::clone(&start);
            std::thread::spawn(move || -> anyhow::Result<Client> {
                start.wait();
                let mut stream = TcpStream::connect(addr)?;
                // connect returns once the kernel completed the handshake,
                // whether or not the server has accepted yet.
                let connected = Instant::now();
                stream.set_read_timeout(Some(CLIENT_TIMEOUT))?;
                stream
                    .write_all(b"GET / HTTP/1.1\r\nHost: timelines\r\nConnection: close\r\n\r\n")?;
                let sent = Instant::now();
                let mut answer = Vec::new();
                stream.read_to_end(&mut answer)?;
                let answered = Instant::now();
                let answer = String::from_utf8_lossy(&answer);
                if !answer.starts_with("HTTP/1.1 200") {
                    bail!("unexpected answer: {answer}");
                }
                let worker = answer.lines().find_map(|line| {
                    let (name, value) = line.split_once(':')?;
                    name.eq_ignore_ascii_case("x-worker")
                        .then(|| value.trim().to_string())
                });
                Ok(Client {
                    local: stream.local_addr()?,
                    connected,
                    sent,
                    answered,
                    worker,
                })
            })
        })
        .collect();
    threads
        .into_iter()
        .map(|thread| {
            thread
                .join()
                .map_err(|_| anyhow!("a client thread panicked"))?
        })
        .collect()
}

/// One row of a timeline, in milliseconds from the common zero.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    pub worker: String,
    pub connected: f64,
    pub accepted: f64,
    pub read: f64,
    pub sent: f64,
    pub closed: f64,
    pub answered: f64,
}

/// Puts clients and server on one clock, one row per client in the order
/// the server accepted them. Zero is the moment the first client's connect
/// returned. The server's clock is shifted so that its first `connect`
/// line falls on the moment that client's connect returned: the server
/// sits idle waiting for it, so it takes that connection at once (to
/// within its log's millisecond). Clients pair with connections by their
/// address where the server logged it, and otherwise (11) in accept order.
pub fn rows(clients: &[Client], served: &[Served]) -> anyhow::Result<Vec<Row>> {
    let Some(zero) = clients.iter().map(|client| client.connected).min() else {
        bail!("no clients");
    };
    let ms = |instant: Instant| instant.duration_since(zero).as_secs_f64() * 1000.0;
    let mut unpaired: Vec<&Client> = clients.iter().collect();
    unpaired.sort_by_key(|client| client.connected);
    let mut pairs = Vec::new();
    for connection in served {
        let named = unpaired
            .iter()
            .position(|client| connection.peer == Some(client.local));
        let at = match (named, connection.peer) {
            (Some(at), _) => at,
            (None, None) if !unpaired.is_empty() => 0,
            // Someone else's connection (there are none), or a client
            // already paired: not one of ours.
            _ => continue,
        };
        pairs.push((unpaired.remove(at), connection));
    }
    if let Some(client) = unpaired.first() {
        bail!("the server logged no connection from {}", client.local);
    }
    let Some((first_client, first_served)) = pairs.first() else {
        bail!("no connections in the server's log");
    };
    let offset = ms(first_client.connected) - first_served.connect * 1000.0;
    let server_ms = |seconds: f64| seconds * 1000.0 + offset;
    pairs
        .into_iter()
        .map(|(client, connection)| {
            let missing = |what: &str| anyhow!("no {what} line for {}", client.local);
            Ok(Row {
                worker: client
                    .worker
                    .clone()
                    .unwrap_or_else(|| connection.worker.clone()),
                connected: ms(client.connected),
                accepted: server_ms(connection.connect),
                read: server_ms(connection.recv.ok_or_else(|| missing("recv"))?),
                sent: server_ms(connection.send.ok_or_else(|| missing("send"))?),
                closed: server_ms(connection.close.ok_or_else(|| missing("close"))?),
                answered: ms(client.answered),
            })
        })
        .collect()
}

/// Runs one model: start it, send the clients, read its log, stop it.
pub fn measure(
    binary: &Path,
    flags: &[String],
    clients: usize,
) -> anyhow::Result<(Vec<Row>, String)> {
    let mut server = ModelServer::start(binary, flags, STARTUP_TIMEOUT)?;
    let measured = run_clients(server.addr(), clients);
    // The `close` lines come after the answers: the server first reads
    // the client's EOF (lingering close).
    let waiting = Instant::now();
    let mut log = server.stderr();
    while log.matches(" close ").count() < clients && waiting.elapsed() < CLOSE_WAIT {
        std::thread::sleep(Duration::from_millis(20));
        log = server.stderr();
    }
    server.stop(STOP_GRACE);
    let rows =
        rows(&measured?, &connections(&log)).with_context(|| format!("server log:\n{log}"))?;
    Ok((rows, log))
}

/// Where one kind of bar starts and ends in a row.
type Span = fn(&Row) -> (f64, f64);

const QUEUE: RGBColor = RGBColor(190, 190, 190);
const DB_WAIT: RGBColor = RGBColor(255, 127, 14);
const ANSWER: RGBColor = RGBColor(31, 119, 180);

/// One SVG: a row per client, first client on top.
pub fn draw(path: &Path, title: &str, caption: &[String], rows: &[Row]) -> anyhow::Result<()> {
    let failed = |error: &dyn std::fmt::Display| anyhow!("cannot draw {}: {error}", path.display());
    let end = rows
        .iter()
        .map(|row| row.closed.max(row.answered))
        .fold(0.0, f64::max);
    // Room on the right for the worker's name.
    let x_max = end * 1.35 + 50.0;
    let count = rows.len() as f64;
    let y_of = |index: usize| count - 1.0 - index as f64;
    let root = SVGBackend::new(path, (WIDTH, HEIGHT)).into_drawing_area();
    root.fill(&WHITE).map_err(|error| failed(&error))?;
    let (chart_area, caption_area) = root.split_vertically(HEIGHT - CAPTION_HEIGHT);
    let mut chart = ChartBuilder::on(&chart_area)
        .caption(title, text_style(20))
        .margin(14)
        .x_label_area_size(44)
        .y_label_area_size(70)
        .build_cartesian_2d(0.0..x_max, -0.7..count - 0.3 + LEGEND_ROOM)
        .map_err(|error| failed(&error))?;
    let client_label = |y: &f64| {
        let index = count - 1.0 - y;
        if index.fract() == 0.0 && index >= 0.0 {
            format!("client {}", index as usize + 1)
        } else {
            String::new()
        }
    };
    chart
        .configure_mesh()
        .x_desc("milliseconds since the first client's connect returned")
        .x_label_formatter(&|ms: &f64| format!("{ms:.0}"))
        .y_labels((rows.len() + 2) * 2)
        .y_label_formatter(&client_label)
        .disable_y_mesh()
        .label_style(text_style(14))
        .axis_desc_style(text_style(15))
        .light_line_style(RGBColor(235, 235, 235))
        .draw()
        .map_err(|error| failed(&error))?;
    let bar = |from: f64, to: f64, y: f64, color: RGBColor| {
        Rectangle::new([(from, y - 0.22), (to.max(from), y + 0.22)], color.filled())
    };
    let kinds: [(&str, RGBColor, Span); 3] = [
        ("connected, not yet accepted (listen queue)", QUEUE, |row| {
            (row.connected, row.accepted)
        }),
        ("request read, waiting for the fake DB", DB_WAIT, |row| {
            (row.read, row.sent)
        }),
        ("answer sent, until the server closes", ANSWER, |row| {
            (row.sent, row.closed)
        }),
    ];
    for (label, color, span) in kinds {
        chart
            .draw_series(rows.iter().enumerate().map(|(index, row)| {
                let (from, to) = span(row);
                bar(from, to, y_of(index), color)
            }))
            .map_err(|error| failed(&error))?
            .label(label)
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 14, y + 5)], color.filled()));
    }
    // The client's own view: a thin line from connect to the answer's end.
    chart
        .draw_series(rows.iter().enumerate().map(|(index, row)| {
            let y = y_of(index) - 0.32;
            PathElement::new(
                vec![(row.connected, y), (row.answered, y)],
                BLACK.stroke_width(2),
            )
        }))
        .map_err(|error| failed(&error))?
        .label("the client: connect returned .. answer read")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 14, y)], BLACK.stroke_width(2)));
    chart
        .draw_series(rows.iter().enumerate().map(|(index, row)| {
            Text::new(
                row.worker.clone(),
                (row.closed.max(row.answered) + end * 0.02, y_of(index) + 0.1),
                text_style(13),
            )
        }))
        .map_err(|error| failed(&error))?;
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.85))
        .border_style(RGBColor(180, 180, 180))
        .label_font(text_style(12))
        .draw()
        .map_err(|error| failed(&error))?;
    draw_caption(&caption_area, caption).map_err(|error| failed(&error))?;
    root.present().map_err(|error| failed(&error))?;
    Ok(())
}

/// The table beside the pictures: each client's times, rounded to the
/// log's millisecond.
fn markdown_rows(model: &str, rows: &[Row]) -> String {
    rows.iter()
        .enumerate()
        .map(|(index, row)| {
            format!(
                "| {model} | {} | {:.0} | {:.0} | {:.0} | {:.0} | `{}` |\n",
                index + 1,
                (row.accepted - row.connected).max(0.0),
                row.read,
                row.sent,
                row.answered,
                row.worker
            )
        })
        .collect()
}

/// Every model asked for: measure, draw, and write the table.
pub fn run_timelines(options: &TimelineOptions) -> anyhow::Result<()> {
    std::fs::create_dir_all(&options.out)
        .with_context(|| format!("cannot create {}", options.out.display()))?;
    let machine = Machine::current();
    let latency = format!("{}ms", options.db_latency.as_millis());
    let mut table = String::from(
        "| model | client | in the listen queue (ms) | request read at (ms) | answer sent at (ms) | client has the answer at (ms) | served by |\n\
         |---|---|---|---|---|---|---|\n",
    );
    for model in &options.models {
        let mut flags: Vec<String> = ["--mode", "http", "--db-latency", &latency, "--log", "debug"]
            .map(String::from)
            .to_vec();
        flags.extend(["--addr".to_string(), "127.0.0.1:0".to_string()]);
        flags.extend(model_setup(model, machine.cores).flags);
        let binary = options.bin_dir.join(model);
        let (rows, _) = measure(&binary, &flags, CLIENTS).with_context(|| model.clone())?;
        let caption = vec![
            format!("{}; client and server share the cores", machine.describe()),
            format!("{model} {}; made by: {}", flags.join(" "), options.command),
        ];
        let title = format!(
            "{model}: {CLIENTS} clients at once, GET / with a {} ms fake DB",
            options.db_latency.as_millis()
        );
        draw(
            &options.out.join(format!("{model}.svg")),
            &title,
            &caption,
            &rows,
        )?;
        table.push_str(&markdown_rows(model, &rows));
        println!("{model}: {} clients drawn", rows.len());
    }
    table.push_str(&format!(
        "\nMeasured on {} by `{}`.\n",
        machine.describe(),
        options.command
    ));
    let path = options.out.join("table.md");
    std::fs::write(&path, table).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One connection as each kind of driver logs it.
    const BLOCKING: &str = "\
    0.512s DEBUG pid=42 conn-3: connect 127.0.0.1:5001
    0.513s DEBUG pid=42 conn-3: recv 78 bytes from 127.0.0.1:5001
    0.814s DEBUG pid=42 conn-3: send 246 bytes to 127.0.0.1:5001
    0.815s DEBUG pid=42 conn-3: close 127.0.0.1:5001";
    const EVENT_LOOP: &str = "\
    1.000s DEBUG pid=7 main: connect 127.0.0.1:5002 (slot 4)
    1.001s DEBUG pid=7 main: recv 78 bytes from 127.0.0.1:5002
    1.301s DEBUG pid=7 main: send 246 bytes to 127.0.0.1:5002
    1.302s DEBUG pid=7 main: eof from 127.0.0.1:5002
    1.302s DEBUG pid=7 main: close 127.0.0.1:5002";
    const IO_URING: &str = "\
    2.000s DEBUG pid=9 main: connect fd 6 (slot 0)
    2.001s DEBUG pid=9 main: recv 78 bytes on fd 6
    2.302s DEBUG pid=9 main: send 246 bytes on fd 6
    2.303s DEBUG pid=9 main: close slot 0";
    /// The blocking drivers before they named the peer on recv and send.
    const UNNAMED: &str = "\
    3.000s DEBUG pid=42 conn-1: connect 127.0.0.1:5003
    3.000s DEBUG pid=42 conn-2: connect 127.0.0.1:5004
    3.001s DEBUG pid=42 conn-2: recv 78 bytes
    3.002s DEBUG pid=42 conn-1: recv 78 bytes
    3.302s DEBUG pid=42 conn-1: send 246 bytes
    3.303s DEBUG pid=42 conn-2: send 246 bytes
    3.304s DEBUG pid=42 conn-1: close 127.0.0.1:5003: Connection reset by peer
    3.305s DEBUG pid=42 conn-2: close 127.0.0.1:5004";

    fn peer(port: u16) -> Option<SocketAddr> {
        Some(SocketAddr::from(([127, 0, 0, 1], port)))
    }

    fn served(peer: Option<SocketAddr>, worker: &str, times: [f64; 4]) -> Served {
        Served {
            peer,
            worker: worker.to_string(),
            connect: times[0],
            recv: Some(times[1]),
            send: Some(times[2]),
            close: Some(times[3]),
        }
    }

    #[test]
    fn every_drivers_lines_make_one_connection() {
        assert_eq!(
            connections(BLOCKING),
            [served(
                peer(5001),
                "pid=42 conn-3",
                [0.512, 0.513, 0.814, 0.815]
            )]
        );
        assert_eq!(
            connections(EVENT_LOOP),
            [served(peer(5002), "pid=7 main", [1.0, 1.001, 1.301, 1.302])]
        );
        assert_eq!(
            connections(IO_URING),
            [served(None, "pid=9 main", [2.0, 2.001, 2.302, 2.303])]
        );
    }

    #[test]
    fn a_line_without_a_peer_belongs_to_its_workers_connection() {
        assert_eq!(
            connections(UNNAMED),
            [
                served(peer(5003), "pid=42 conn-1", [3.0, 3.002, 3.302, 3.304]),
                served(peer(5004), "pid=42 conn-2", [3.0, 3.001, 3.303, 3.305]),
            ]
        );
    }

    #[test]
    fn other_lines_are_not_events() {
        for line in [
            "listening on 127.0.0.1:9090 model=07-epoll mode=http pid=7",
            "    0.001s INFO  pid=7 main: open-file limit 1024",
            "    0.002s DEBUG pid=7 main: started worker process 8",
            "    0.003s DEBUG pid=7 main: cannot set TCP_NODELAY: Invalid argument",
        ] {
            assert_eq!(parse_line(line), None, "{line}");
        }
    }

    #[test]
    fn a_reused_descriptor_starts_a_new_connection() {
        let log = format!("{IO_URING}\n{}", IO_URING.replace("    2.", "    4."));
        let connections = connections(&log);
        assert_eq!(connections.len(), 2);
        assert_eq!(connections[1].recv, Some(4.001));
    }
}
