//! The metrics endpoint: `GET /metrics` answers the registry's OpenMetrics text to a scraper
//! that accepts it (Prometheus does), else the same metrics in Prometheus' older text format
//! (curl, `promtool check metrics`); tiny_http parses the requests, anything else is a 404.
//! It only reads the registry; it samples nothing and changes nothing.

use std::net::SocketAddr;
use std::sync::Arc;

use super::metrics::Metrics;

const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
const TEXT_FORMAT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// A server answering on its own thread for as long as the agent runs.
pub struct MetricsServer {
    /// Where it listens (the port the system chose, for `:0`).
    pub addr: SocketAddr,
}

/// Listen on `addr` and answer scrapes from a thread of its own.
pub fn serve(addr: SocketAddr, metrics: Arc<Metrics>) -> std::io::Result<MetricsServer> {
    let server = tiny_http::Server::http(addr).map_err(std::io::Error::other)?;
    let addr = server
        .server_addr()
        .to_ip()
        .ok_or_else(|| std::io::Error::other("not an IP address"))?;
    std::thread::Builder::new()
        .name("metrics".into())
        .spawn(move || {
            for request in server.incoming_requests() {
                let response = respond_to(&request, &metrics);
                // A scraper that hung up is its own business.
                let _ = request.respond(response);
            }
        })?;
    Ok(MetricsServer { addr })
}

fn respond_to(
    request: &tiny_http::Request,
    metrics: &Metrics,
) -> tiny_http::Response<std::io::Cursor<Vec<u8>>> {
    let path = request.url().split('?').next().unwrap_or("");
    if *request.method() != tiny_http::Method::Get || path != "/metrics" {
        return tiny_http::Response::from_string("gridlock watch serves GET /metrics only\n")
            .with_status_code(404);
    }
    let openmetrics = request.headers().iter().any(|h| {
        h.field.equiv("Accept") && h.value.as_str().contains("application/openmetrics-text")
    });
    let (body, kind) = if openmetrics {
        (metrics.encode(), OPENMETRICS)
    } else {
        (text_format(&metrics.encode()), TEXT_FORMAT)
    };
    let header = tiny_http::Header::from_bytes("Content-Type", kind).expect("a valid header");
    tiny_http::Response::from_string(body).with_header(header)
}

/// The OpenMetrics text in Prometheus' text format 0.0.4: a counter's HELP and TYPE name the
/// `_total` series itself, and there is no `# EOF`. Everything else reads the same.
pub fn text_format(openmetrics: &str) -> String {
    let counters: Vec<&str> = openmetrics
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE ")?.strip_suffix(" counter"))
        .collect();
    let mut out = String::with_capacity(openmetrics.len());
    for line in openmetrics.lines() {
        if line == "# EOF" {
            continue;
        }
        let renamed = ["# HELP ", "# TYPE "].iter().find_map(|prefix| {
            let rest = line.strip_prefix(prefix)?;
            let (name, tail) = rest.split_once(' ')?;
            counters
                .contains(&name)
                .then(|| format!("{prefix}{name}_total {tail}"))
        });
        out.push_str(renamed.as_deref().unwrap_or(line));
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_are_named_by_their_series_in_the_text_format() {
        let om = "# HELP x_errors Errors.\n# TYPE x_errors counter\nx_errors_total{reason=\"a\"} 1\n# HELP x_up Up.\n# TYPE x_up gauge\nx_up 1\n# EOF\n";
        assert_eq!(
            text_format(om),
            "# HELP x_errors_total Errors.\n# TYPE x_errors_total counter\nx_errors_total{reason=\"a\"} 1\n# HELP x_up Up.\n# TYPE x_up gauge\nx_up 1\n"
        );
    }
}
