//! The accept loop, one thread per connection, and the routes.

use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use crate::app::{spawn_cpu_burner, App, Health, Stop};
use crate::http::{self, Connection, ReadError, Rejection, Request, Response};

/// Maximum number of open connections. Further ones get 503, so a flood cannot exhaust threads.
const MAX_CONNECTIONS: usize = 512;

/// Stack size of connection threads. Handlers keep their buffers on the heap, so a
/// small stack is enough. RSS counts only the stack pages a thread touches, so this
/// bounds the address space that many idle keep-alive connections reserve, not RSS.
const CONNECTION_STACK_BYTES: usize = 256 * 1024;

/// How long the accept loop may block writing a 503 to a client over the connection limit.
const BUSY_WRITE_TIMEOUT: Duration = Duration::from_secs(1);

/// Maximum duration that `POST /burn-cpu` accepts, in seconds (one day).
const MAX_BURN_SECONDS: f64 = 86_400.0;

/// Route label for requests that matched no route, so 404s add one series, not one per path.
const UNMATCHED_ROUTE: &str = "unmatched";

/// Route label of every `/status/CODE` request, so the codes add one series, not one per code.
const STATUS_ROUTE: &str = "/status";

/// Route label for requests rejected before their path was known.
const INVALID_ROUTE: &str = "invalid";

/// Accepts connections until shutdown begins, then drops the listener.
pub fn run_accept_loop(listener: TcpListener, app: Arc<App>) {
    for stream in listener.incoming() {
        if app.is_shutting_down() {
            break;
        }

        match stream {
            Ok(stream) => spawn_connection(stream, &app),
            Err(error) => {
                app.logger
                    .error(&format!("accepting a connection failed: {error}"));
                // Errors such as "too many open files" persist for a while, so pause
                // instead of failing again at once in a tight loop.
                thread::sleep(Duration::from_millis(100));
            }
        }
    }
}

fn spawn_connection(mut stream: TcpStream, app: &Arc<App>) {
    if app.open_connections() >= MAX_CONNECTIONS {
        let busy = Response::text(
            503,
            format!("too many connections (limit {MAX_CONNECTIONS}); retry later\n"),
        );
        let _ = stream.set_write_timeout(Some(BUSY_WRITE_TIMEOUT));
        let _ = http::write_response(&mut stream, &busy, false, true);
        return;
    }

    let guard = app.open_connection();
    let thread_app = Arc::clone(app);
    let spawned = thread::Builder::new()
        .name("connection".into())
        .stack_size(CONNECTION_STACK_BYTES)
        .spawn(move || {
            let _guard = guard;
            serve_connection(stream, &thread_app);
        });

    // On failure the closure is dropped with its stream and guard, which closes the socket.
    if let Err(error) = spawned {
        app.logger.error(&format!(
            "starting a connection thread failed: {error}; the connection was closed"
        ));
    }
}

/// Serves requests on one connection until the client closes it or requests a close.
fn serve_connection(stream: TcpStream, app: &App) {
    if stream.set_write_timeout(Some(http::WRITE_TIMEOUT)).is_err() {
        return;
    }
    let _ = stream.set_nodelay(true);
    let mut connection = Connection::new(stream);

    loop {
        let request = match connection.read_request() {
            Ok(request) => request,
            Err(ReadError::Closed | ReadError::Broken) => return,
            Err(ReadError::Rejected(rejection)) => {
                reject(&mut connection, &rejection, app);
                connection.close_gracefully();
                return;
            }
        };

        let keep_going = serve_request(&mut connection, &request, app);
        if !keep_going {
            return;
        }
    }
}

/// Serves one request and returns whether the connection stays open.
fn serve_request(connection: &mut Connection, request: &Request, app: &App) -> bool {
    let _in_progress = app.begin_request();
    let started = Instant::now();

    let routed = route(request, app);
    let keep_alive = request.keep_alive && routed.exit_code.is_none() && !app.is_shutting_down();
    let include_body = request.method != "HEAD";
    let written = http::write_response(
        connection.stream(),
        &routed.response,
        keep_alive,
        include_body,
    );

    app.metrics
        .record_request(routed.label, routed.response.status, started.elapsed());

    if let Some(code) = routed.exit_code {
        // Closing our side first lets the client read the whole response before the process ends.
        let _ = connection.stream().shutdown(Shutdown::Write);
        app.request_stop(Stop::Exit {
            code,
            reason: "requested by POST /exit".into(),
        });
    }
    written.is_ok() && keep_alive
}

fn reject(connection: &mut Connection, rejection: &Rejection, app: &App) {
    let response = Response::text(rejection.status, format!("{}\n", rejection.message));
    let _ = http::write_response(connection.stream(), &response, false, true);
    app.metrics
        .record_request(INVALID_ROUTE, rejection.status, Duration::ZERO);
}

/// A response with its metrics label and, for `POST /exit`, the status to exit with.
struct Routed {
    label: &'static str,
    response: Response,
    exit_code: Option<u8>,
}

impl Routed {
    fn new(label: &'static str, response: Response) -> Self {
        Self {
            label,
            response,
            exit_code: None,
        }
    }
}

fn route(request: &Request, app: &App) -> Routed {
    match request.path.as_str() {
        "/" => read_only("/", request, || greeting(app)),
        "/healthz" => read_only("/healthz", request, || healthz(app)),
        "/metrics" => read_only("/metrics", request, || metrics(app)),
        "/fail-health" => action("/fail-health", request, || set_health(app, true)),
        "/recover-health" => action("/recover-health", request, || set_health(app, false)),
        "/burn-cpu" => action("/burn-cpu", request, || burn_cpu(request, app)),
        "/exit" => exit_route(request),
        path if path.starts_with("/status/") => {
            let code = &path["/status/".len()..];
            read_only(STATUS_ROUTE, request, || status_route(code))
        }
        _ => Routed::new(
            UNMATCHED_ROUTE,
            Response::text(404, format!("no route for {}\n", request.path)),
        ),
    }
}

/// Serves a GET route, which also serves HEAD.
fn read_only(label: &'static str, request: &Request, handler: impl FnOnce() -> Response) -> Routed {
    match request.method.as_str() {
        "GET" | "HEAD" => Routed::new(label, handler()),
        _ => Routed::new(label, method_not_allowed(request, "GET, HEAD")),
    }
}

fn action(label: &'static str, request: &Request, handler: impl FnOnce() -> Response) -> Routed {
    match request.method.as_str() {
        "POST" => Routed::new(label, handler()),
        _ => Routed::new(label, method_not_allowed(request, "POST")),
    }
}

fn method_not_allowed(request: &Request, allow: &'static str) -> Response {
    let mut response = Response::text(
        405,
        format!(
            "method {} is not allowed on {}; use {allow}\n",
            request.method, request.path
        ),
    );
    response.allow = Some(allow);
    response
}

fn greeting(app: &App) -> Response {
    let identity = &app.identity;
    Response::text(
        200,
        format!(
            "{} from shipdeck-sample replica {} version {} pid {}\n",
            identity.greeting,
            identity.replica,
            identity.version,
            std::process::id()
        ),
    )
}

fn healthz(app: &App) -> Response {
    match app.health() {
        Health::Ok => Response::text(200, "ok\n"),
        Health::NotReady { remaining } => Response::text(
            503,
            format!("not ready: ready in {:.1} s\n", remaining.as_secs_f64()),
        ),
        Health::Failing => Response::text(
            503,
            "failing: POST /fail-health or --fail-health set this; POST /recover-health clears it\n",
        ),
        Health::ShuttingDown => Response::text(503, "shutting down\n"),
    }
}

fn metrics(app: &App) -> Response {
    let mut response = Response::text(200, app.metrics.render(&app.gauges()));
    response.content_type = "text/plain; version=0.0.4; charset=utf-8";
    response
}

fn set_health(app: &App, failing: bool) -> Response {
    let was_failing = app.set_health_failing(failing);

    let message = match (was_failing, failing) {
        (false, true) => "health check now fails",
        (true, false) => "health check recovered",
        (true, true) => "health check already fails",
        (false, false) => "health check already passes",
    };
    app.logger.warn(&format!("{message} (requested over HTTP)"));
    Response::text(200, format!("{message}\n"))
}

fn burn_cpu(request: &Request, app: &App) -> Response {
    let seconds = match parse_burn_seconds(request.query_param("seconds")) {
        Ok(seconds) => seconds,
        Err(message) => return Response::text(400, format!("{message}\n")),
    };

    if let Err(error) = spawn_cpu_burner(Some(Duration::from_secs_f64(seconds))) {
        app.logger
            .error(&format!("starting a CPU burn thread failed: {error}"));
        return Response::text(503, format!("starting a CPU burn thread failed: {error}\n"));
    }

    app.logger.info(&format!(
        "burning one core for {seconds} s (requested over HTTP)"
    ));
    Response::text(202, format!("burning one core for {seconds} s\n"))
}

fn parse_burn_seconds(value: Option<&str>) -> Result<f64, String> {
    let Some(value) = value else {
        return Err("missing query parameter seconds, as in /burn-cpu?seconds=10".into());
    };

    match value.parse::<f64>() {
        Ok(seconds) if seconds > 0.0 && seconds <= MAX_BURN_SECONDS => Ok(seconds),
        _ => Err(format!(
            "invalid seconds={value:?}: use a number greater than 0 and at most {MAX_BURN_SECONDS}"
        )),
    }
}

/// Answers with the status code named in the path. Interim (1xx) codes would need a
/// final response after them, so they are rejected like any other invalid code.
fn status_route(code: &str) -> Response {
    match parse_status_code(code) {
        Ok(status) => Response::text(status, format!("status {status} as requested\n")),
        Err(message) => Response::text(400, format!("{message}\n")),
    }
}

fn parse_status_code(code: &str) -> Result<u16, String> {
    let valid = code.len() == 3 && code.bytes().all(|byte| byte.is_ascii_digit());
    match code.parse::<u16>() {
        Ok(status) if valid && (200..=599).contains(&status) => Ok(status),
        _ => Err(format!(
            "invalid status code {code:?} in /status/CODE: use a whole number from 200 to 599"
        )),
    }
}

fn exit_route(request: &Request) -> Routed {
    if request.method != "POST" {
        return Routed::new("/exit", method_not_allowed(request, "POST"));
    }

    let value = request.query_param("code").unwrap_or("0");
    let Ok(code) = value.parse::<u8>() else {
        let message = format!("invalid code={value:?}: use a whole number from 0 to 255\n");
        return Routed::new("/exit", Response::text(400, message));
    };

    Routed {
        label: "/exit",
        response: Response::text(200, format!("exiting with status {code}\n")),
        exit_code: Some(code),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burn_seconds_bounds() {
        assert_eq!(parse_burn_seconds(Some("2.5")), Ok(2.5));
        assert!(parse_burn_seconds(None).is_err());
        assert!(parse_burn_seconds(Some("0")).is_err());
        assert!(parse_burn_seconds(Some("-1")).is_err());
        assert!(parse_burn_seconds(Some("NaN")).is_err());
        assert!(parse_burn_seconds(Some("100000")).is_err());
    }

    #[test]
    fn status_code_bounds() {
        assert_eq!(parse_status_code("200"), Ok(200));
        assert_eq!(parse_status_code("599"), Ok(599));
        for invalid in ["100", "199", "600", "20", "+200", "2000", "abc", ""] {
            assert!(parse_status_code(invalid).is_err(), "{invalid:?}");
        }
    }
}
