//! The SVG plots of a comparison, drawn with `plotters` (SVG backend only:
//! no font or image libraries needed; the viewer renders the text).
//!
//! One file per chart, each with a legend, axis labels with units, and a
//! caption line saying the machine and the command that made it:
//!
//! - `http-sweep-throughput.svg`: requests/s against clients, with each
//!   model's Little's-law bound dashed;
//! - `http-sweep-p99.svg`: p99 latency against clients;
//! - `echo-sweep-throughput.svg`: echoes/s against connections;
//! - `c10k-rss.svg` and `c10k-threads.svg`: memory and threads against
//!   held connections.

use std::path::Path;

use anyhow::anyhow;
use plotters::coord::ranged1d::{AsRangedCoord, ValueFormatter};
use plotters::prelude::*;

use super::results::{CellResult, Results, of_variant};
use super::scenarios::{DB_LATENCY, MODELS, Scenario};

pub(crate) const WIDTH: u32 = 960;
const HEIGHT: u32 = 640;
/// Room under the chart for the caption line.
pub(crate) const CAPTION_HEIGHT: u32 = 64;

/// One colour per model, the same in every chart.
fn model_color(model: &str) -> RGBColor {
    const COLORS: [RGBColor; 11] = [
        RGBColor(214, 39, 40),   // 01 red
        RGBColor(255, 127, 14),  // 02 orange
        RGBColor(140, 86, 75),   // 03 brown
        RGBColor(227, 119, 194), // 04 pink
        RGBColor(148, 103, 189), // 05 purple
        RGBColor(188, 189, 34),  // 06 olive
        RGBColor(31, 119, 180),  // 07 blue
        RGBColor(23, 190, 207),  // 08 cyan
        RGBColor(44, 160, 44),   // 09 green
        RGBColor(127, 127, 127), // 10 grey
        RGBColor(0, 0, 0),       // 11 black
    ];
    let index = MODELS.iter().position(|name| *name == model).unwrap_or(0);
    COLORS[index % COLORS.len()]
}

/// A named line of points.
#[derive(Clone, Debug)]
struct Series {
    name: String,
    color: RGBColor,
    points: Vec<(f64, f64)>,
    dashed: bool,
}

/// What a chart shows.
#[derive(Debug)]
struct ChartSpec<'a> {
    file: &'a str,
    title: String,
    x_label: &'a str,
    y_label: &'a str,
    caption: Vec<String>,
    series: Vec<Series>,
}

impl ChartSpec<'_> {
    fn points(&self) -> impl Iterator<Item = &(f64, f64)> {
        self.series.iter().flat_map(|series| series.points.iter())
    }

    /// The range of x or y over all points, widened for a log axis.
    fn range(&self, pick: impl Fn(&(f64, f64)) -> f64, log: bool) -> (f64, f64) {
        let values = self.points().map(pick).filter(|value| !log || *value > 0.0);
        let (low, high) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(low, high), value| {
            (low.min(value), high.max(value))
        });
        if !low.is_finite() {
            return (1.0, 10.0);
        }
        if log {
            (low / 2.0, high * 2.0)
        } else {
            (low.min(0.0), (high * 1.1).max(1.0))
        }
    }
}

/// Per model, one value per client count from the cells of a scenario.
fn per_model(cells: &[&CellResult], value: impl Fn(&CellResult) -> Option<f64>) -> Vec<Series> {
    let mut series: Vec<Series> = Vec::new();
    for result in cells {
        let Some(y) = value(result) else { continue };
        let x = result.cell.clients as f64;
        match series
            .iter_mut()
            .find(|line| line.name == result.cell.model)
        {
            Some(line) => line.points.push((x, y)),
            None => series.push(Series {
                name: result.cell.model.clone(),
                color: model_color(&result.cell.model),
                points: vec![(x, y)],
                dashed: false,
            }),
        }
    }
    for line in &mut series {
        line.points.sort_by(|a, b| a.0.total_cmp(&b.0));
    }
    series
}

pub(crate) fn text_style(size: u32) -> TextStyle<'static> {
    ("sans-serif", size).into_font().color(&BLACK)
}

/// Number labels without trailing noise: 1, 10, 1000, 2.5, 0.3.
fn tick_label(value: &f64) -> String {
    if *value >= 100.0 || (value.fract() == 0.0 && value.abs() >= 1.0) {
        format!("{value:.0}")
    } else if *value >= 1.0 {
        format!("{value:.1}")
    } else {
        format!("{value:.2}")
    }
}

fn draw<X, Y>(folder: &Path, spec: &ChartSpec, x_range: X, y_range: Y) -> anyhow::Result<()>
where
    X: AsRangedCoord<Value = f64>,
    Y: AsRangedCoord<Value = f64>,
    X::CoordDescType: ValueFormatter<f64>,
    Y::CoordDescType: ValueFormatter<f64>,
{
    let path = folder.join(spec.file);
    let failed = |error: &dyn std::fmt::Display| anyhow!("cannot draw {}: {error}", path.display());
    let root = SVGBackend::new(&path, (WIDTH, HEIGHT)).into_drawing_area();
    root.fill(&WHITE).map_err(|error| failed(&error))?;
    let (chart_area, caption_area) = root.split_vertically(HEIGHT - CAPTION_HEIGHT);
    let mut chart = ChartBuilder::on(&chart_area)
        .caption(&spec.title, text_style(22))
        .margin(14)
        .x_label_area_size(48)
        .y_label_area_size(80)
        .build_cartesian_2d(x_range, y_range)
        .map_err(|error| failed(&error))?;
    chart
        .configure_mesh()
        .x_desc(spec.x_label)
        .y_desc(spec.y_label)
        .x_label_formatter(&tick_label)
        .y_label_formatter(&tick_label)
        .label_style(text_style(14))
        .axis_desc_style(text_style(16))
        .light_line_style(RGBColor(235, 235, 235))
        .draw()
        .map_err(|error| failed(&error))?;
    for series in &spec.series {
        let color = series.color;
        let style = color.stroke_width(2);
        if series.dashed {
            chart
                .draw_series(DashedLineSeries::new(
                    series.points.iter().copied(),
                    8,
                    5,
                    color.stroke_width(1),
                ))
                .map_err(|error| failed(&error))?
                .label(series.name.clone())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 8, y)], color.stroke_width(1))
                });
        } else {
            chart
                .draw_series(LineSeries::new(series.points.iter().copied(), style))
                .map_err(|error| failed(&error))?
                .label(series.name.clone())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], style));
            chart
                .draw_series(
                    series
                        .points
                        .iter()
                        .map(|point| Circle::new(*point, 4, color.filled())),
                )
                .map_err(|error| failed(&error))?;
        }
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(RGBColor(180, 180, 180))
        .label_font(text_style(13))
        .draw()
        .map_err(|error| failed(&error))?;
    draw_caption(&caption_area, &spec.caption).map_err(|error| failed(&error))?;
    root.present().map_err(|error| failed(&error))?;
    Ok(())
}

/// The caption lines under a chart, small, one under the other.
pub(crate) fn draw_caption<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    lines: &[String],
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    for (index, line) in lines.iter().enumerate() {
        area.draw_text(line, &text_style(12), (12, 4 + 18 * index as i32))?;
    }
    Ok(())
}

/// Draws a chart with log or linear axes; returns its file name.
fn draw_spec(folder: &Path, spec: &ChartSpec, log_x: bool, log_y: bool) -> anyhow::Result<String> {
    let (x_low, x_high) = spec.range(|point| point.0, log_x);
    let (y_low, y_high) = spec.range(|point| point.1, log_y);
    match (log_x, log_y) {
        (true, true) => draw(
            folder,
            spec,
            (x_low..x_high).log_scale(),
            (y_low..y_high).log_scale(),
        )?,
        (true, false) => draw(folder, spec, (x_low..x_high).log_scale(), y_low..y_high)?,
        (false, true) => draw(folder, spec, x_low..x_high, (y_low..y_high).log_scale())?,
        (false, false) => draw(folder, spec, x_low..x_high, y_low..y_high)?,
    }
    Ok(spec.file.to_string())
}

/// The caption: the machine and the command, cut to fit one line each.
fn caption(results: &Results) -> Vec<String> {
    let cut = |text: String| {
        if text.chars().count() > 150 {
            text.chars().take(147).collect::<String>() + "..."
        } else {
            text
        }
    };
    vec![
        cut(format!(
            "{}{}; client and server share the cores",
            if results.quick {
                "QUICK RUN, rough numbers; "
            } else {
                ""
            },
            results.machine.describe()
        )),
        cut(results.command.clone()),
    ]
    .into_iter()
    .chain(
        results
            .updated_by
            .iter()
            .map(|update| cut(format!("updated by: {update}"))),
    )
    .collect()
}

/// The dashed Little's-law bounds: one per distinct capacity among the
/// models shown, in the colour of the model it belongs to (grey for the
/// models without a worker limit).
fn bound_lines(cells: &[&CellResult]) -> Vec<Series> {
    let clients: Vec<f64> = cells
        .iter()
        .map(|result| result.cell.clients as f64)
        .collect();
    let low = clients.iter().copied().fold(f64::INFINITY, f64::min);
    let high = clients.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if !low.is_finite() {
        return Vec::new();
    }
    let seconds = DB_LATENCY.as_secs_f64();
    let mut lines: Vec<Series> = Vec::new();
    let mut seen_unlimited = false;
    for result in cells {
        let name = match result.capacity {
            Some(capacity) => format!(
                "bound {}: min(clients, {capacity}) / 0.3 s",
                result.cell.model
            ),
            None if !seen_unlimited => {
                seen_unlimited = true;
                "bound, no worker limit: clients / 0.3 s".to_string()
            }
            None => continue,
        };
        if lines.iter().any(|line| line.name == name) {
            continue;
        }
        let capacity = result
            .capacity
            .map_or(f64::INFINITY, |capacity| capacity as f64);
        let mut xs = vec![low, high];
        if capacity > low && capacity < high {
            xs.push(capacity);
        }
        xs.sort_by(f64::total_cmp);
        lines.push(Series {
            name,
            color: if result.capacity.is_some() {
                model_color(&result.cell.model)
            } else {
                RGBColor(120, 120, 120)
            },
            points: xs.iter().map(|x| (*x, x.min(capacity) / seconds)).collect(),
            dashed: true,
        });
    }
    lines
}

/// Draws every chart there is data for; returns the file names.
pub fn draw_all(results: &Results, folder: &Path) -> anyhow::Result<Vec<String>> {
    let mut files = Vec::new();
    let cells = |scenario: Scenario| -> Vec<&CellResult> {
        results
            .cells
            .iter()
            .filter(|result| result.cell.scenario == scenario && result.headline.is_some())
            .collect()
    };
    let rps = |result: &CellResult| {
        let value = result.headline.as_ref()?.requests_per_second;
        (value > 0.0).then_some(value)
    };
    let p99_ms = |result: &CellResult| {
        let headline = result.headline.as_ref()?;
        (headline.requests_per_second > 0.0).then(|| headline.p99_us as f64 / 1000.0)
    };

    let http = cells(Scenario::HttpSweep);
    if !http.is_empty() {
        let mut series = per_model(&http, rps);
        series.extend(bound_lines(&http));
        files.push(draw_spec(
            folder,
            &ChartSpec {
                file: "http-sweep-throughput.svg",
                title: "http-sweep: throughput vs clients (fake DB 300 ms, keep-alive)".to_string(),
                x_label: "clients (connections, no think time; log scale)",
                y_label: "requests per second (log scale)",
                caption: caption(results),
                series,
            },
            true,
            true,
        )?);
        files.push(draw_spec(
            folder,
            &ChartSpec {
                file: "http-sweep-p99.svg",
                title: "http-sweep: p99 latency vs clients (completed requests)".to_string(),
                x_label: "clients (log scale)",
                y_label: "p99 latency, ms (log scale)",
                caption: caption(results),
                series: per_model(&http, p99_ms),
            },
            true,
            true,
        )?);
    }
    // What one request cost the server: user + system CPU microseconds.
    let cpu_us = |result: &CellResult| {
        let cost = result.headline.as_ref()?.cost?;
        let total = cost.cpu_user_us + cost.cpu_system_us;
        (total > 0.0).then_some(total)
    };
    if http.iter().any(|result| cpu_us(result).is_some()) {
        files.push(draw_spec(
            folder,
            &ChartSpec {
                file: "http-sweep-cpu-per-request.svg",
                title: "http-sweep: server CPU per request (user + system)".to_string(),
                x_label: "clients (log scale)",
                y_label: "CPU microseconds per request (log scale)",
                caption: caption(results),
                series: per_model(&http, cpu_us),
            },
            true,
            true,
        )?);
    }
    let echo = cells(Scenario::EchoSweep);
    if !echo.is_empty() {
        files.push(draw_spec(
            folder,
            &ChartSpec {
                file: "echo-sweep-throughput.svg",
                title: "echo-sweep: 64-byte echoes per second vs connections".to_string(),
                x_label: "connections (closed loop; log scale)",
                y_label: "echoes per second (log scale)",
                caption: caption(results),
                series: per_model(&echo, rps),
            },
            true,
            true,
        )?);
    }
    let rpc = cells(Scenario::RpcSweep);
    for (call, file, title) in [
        (
            "query",
            "rpc-sweep-query-throughput.svg",
            "rpc-sweep: query calls per second vs clients (fake DB 300 ms)",
        ),
        (
            "func1",
            "rpc-sweep-func1-throughput.svg",
            "rpc-sweep: func1 calls per second vs clients (no waiting)",
        ),
    ] {
        let of_call = of_variant(&rpc, call);
        if of_call.is_empty() {
            continue;
        }
        let mut series = per_model(&of_call, rps);
        if call == "query" {
            series.extend(bound_lines(&of_call));
        }
        files.push(draw_spec(
            folder,
            &ChartSpec {
                file,
                title: title.to_string(),
                x_label: "clients (connections, closed loop; log scale)",
                y_label: "calls per second (log scale)",
                caption: caption(results),
                series,
            },
            true,
            true,
        )?);
    }
    let query = of_variant(&rpc, "query");
    if !query.is_empty() {
        files.push(draw_spec(
            folder,
            &ChartSpec {
                file: "rpc-sweep-query-threads.svg",
                title: "rpc-sweep: server threads vs clients (query)".to_string(),
                x_label: "clients (log scale)",
                y_label: "threads of the server's processes (log scale)",
                caption: caption(results),
                series: per_model(&query, |result| {
                    Some(result.headline.as_ref()?.threads_peak? as f64)
                }),
            },
            true,
            true,
        )?);
        files.push(draw_spec(
            folder,
            &ChartSpec {
                file: "rpc-sweep-query-rss.svg",
                title: "rpc-sweep: server memory vs clients (query)".to_string(),
                x_label: "clients (log scale)",
                y_label: "RSS of the server's processes, MiB",
                caption: caption(results),
                series: per_model(&query, |result| {
                    Some(result.headline.as_ref()?.rss_peak_bytes? as f64 / (1024.0 * 1024.0))
                }),
            },
            true,
            false,
        )?);
    }
    let hold = cells(Scenario::C10k);
    if !hold.is_empty() {
        // Each model's line starts at its size right after start.
        let with_baseline =
            |value: &dyn Fn(&CellResult) -> Option<f64>,
             baseline: &dyn Fn(&CellResult) -> Option<f64>| {
                let mut series = per_model(&hold, value);
                for line in &mut series {
                    if let Some(start) = hold
                        .iter()
                        .filter(|result| result.cell.model == line.name)
                        .find_map(|result| baseline(result))
                    {
                        line.points.insert(0, (0.0, start));
                    }
                }
                series
            };
        let mebibytes = |bytes: u64| bytes as f64 / (1024.0 * 1024.0);
        files.push(draw_spec(
            folder,
            &ChartSpec {
                file: "c10k-rss.svg",
                title: "c10k: server memory vs idle connections".to_string(),
                x_label: "connections held open (0 = right after start)",
                y_label: "RSS of the server's processes, MiB",
                caption: caption(results),
                series: with_baseline(
                    &|result| Some(mebibytes(result.headline.as_ref()?.rss_peak_bytes?)),
                    &|result| Some(mebibytes(result.baseline.as_ref()?.rss_bytes)),
                ),
            },
            false,
            false,
        )?);
        files.push(draw_spec(
            folder,
            &ChartSpec {
                file: "c10k-threads.svg",
                title: "c10k: server threads vs idle connections".to_string(),
                x_label: "connections held open (0 = right after start)",
                y_label: "threads of the server's processes (log scale)",
                caption: caption(results),
                series: with_baseline(
                    &|result| Some(result.headline.as_ref()?.threads_peak? as f64),
                    &|result| Some(result.baseline.as_ref()?.threads as f64),
                ),
            },
            false,
            true,
        )?);
    }
    Ok(files)
}
