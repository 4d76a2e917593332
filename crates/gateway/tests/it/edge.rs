//! The public edge under hostile clients, over raw sockets: idle and half-sent
//! connections, bodies declared or sent too large, malformed heads, and the framework's
//! own refusals in the API's shape.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

use crate::TestApp;

/// Short limits so that the timeouts can be watched in a test.
async fn app() -> TestApp {
    TestApp::start_with(|c| {
        c.header_timeout = Duration::from_millis(800);
        c.keep_alive_timeout = Duration::from_millis(2500);
        c.body_timeout = Duration::from_millis(800);
    })
    .await
}

async fn connect(app: &TestApp) -> TcpStream {
    TcpStream::connect(app.base.trim_start_matches("http://"))
        .await
        .unwrap()
}

/// Reads until the server closes the connection (or `within` passes: `None`).
async fn read_to_close(socket: &mut TcpStream, within: Duration) -> Option<String> {
    let mut got = Vec::new();
    let read = tokio::time::timeout(within, async {
        let mut buf = [0_u8; 4096];
        loop {
            match socket.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    read.ok()
        .map(|()| String::from_utf8_lossy(&got).into_owned())
}

/// Reads one answer's head and as much body as came with it, without waiting for a close.
async fn read_answer(socket: &mut TcpStream) -> String {
    let mut got = Vec::new();
    let mut buf = [0_u8; 4096];
    let deadline = Instant::now() + Duration::from_secs(5);
    while !String::from_utf8_lossy(&got).contains("}") {
        assert!(Instant::now() < deadline, "no answer: {got:?}");
        let n = tokio::time::timeout(Duration::from_secs(5), socket.read(&mut buf))
            .await
            .unwrap()
            .unwrap();
        if n == 0 {
            break;
        }
        got.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&got).into_owned()
}

#[tokio::test]
async fn connections_that_send_nothing_or_half_a_head_are_closed_at_the_header_timeout() {
    let app = app().await;
    let started = Instant::now();
    let mut idle = connect(&app).await;
    let mut half_head = connect(&app).await;
    half_head
        .write_all(b"POST /api/v1/webinars/1/registrations HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    // A byte now and then must not keep a head open forever (slowloris).
    let mut trickle = connect(&app).await;
    let trickling = tokio::spawn(async move {
        for b in b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaa" {
            if trickle.write_all(&[*b]).await.is_err() {
                return Instant::now();
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the trickling head was never cut off");
    });
    for socket in [&mut idle, &mut half_head] {
        let said = read_to_close(socket, Duration::from_secs(5))
            .await
            .expect("closed by the header timeout");
        assert!(said.is_empty(), "nothing to answer: {said:?}");
    }
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(700) && took < Duration::from_secs(4),
        "{took:?}"
    );
    let cut = trickling.await.unwrap().duration_since(started);
    assert!(cut < Duration::from_secs(4), "trickle cut after {cut:?}");
    // The gateway itself kept answering.
    assert_eq!(app.get("/healthz").await.status, 200);
}

#[tokio::test]
async fn keep_alive_lasts_its_own_timeout_and_a_slow_body_gets_408() {
    let app = app().await;
    let mut kept = connect(&app).await;
    kept.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let first = read_answer(&mut kept).await;
    assert!(first.starts_with("HTTP/1.1 200"), "{first}");
    let idle_since = Instant::now();

    let mut slow_body = connect(&app).await;
    slow_body
        .write_all(
            b"POST /api/v1/webinars/1/registrations HTTP/1.1\r\nHost: x\r\n\
              Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"first",
        )
        .await
        .unwrap();
    let refused = read_to_close(&mut slow_body, Duration::from_secs(5))
        .await
        .expect("closed after the body deadline");
    assert!(refused.starts_with("HTTP/1.1 408"), "{refused}");
    assert!(
        refused.contains(r#""error":"request_timeout""#),
        "{refused}"
    );

    // Past the header timeout, an idle keep-alive connection is still usable…
    tokio::time::sleep(Duration::from_millis(1200).saturating_sub(idle_since.elapsed())).await;
    kept.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let second = read_answer(&mut kept).await;
    assert!(second.starts_with("HTTP/1.1 200"), "{second}");
    // …and closed once idle for the keep-alive timeout.
    let idle_again = Instant::now();
    let closed = read_to_close(&mut kept, Duration::from_secs(6)).await;
    assert_eq!(closed.as_deref(), Some(""));
    let idle = idle_again.elapsed();
    assert!(
        idle >= Duration::from_millis(2300) && idle < Duration::from_secs(5),
        "{idle:?}"
    );
}

#[tokio::test]
async fn a_body_declared_too_large_is_refused_at_once_without_100_continue() {
    let app = app().await;
    for expect in ["", "Expect: 100-continue\r\n"] {
        let mut socket = connect(&app).await;
        let head = format!(
            "POST /api/v1/webinars/1/registrations HTTP/1.1\r\nHost: x\r\n\
             Content-Type: application/json\r\nContent-Length: 10737418240\r\n{expect}\r\n"
        );
        socket.write_all(head.as_bytes()).await.unwrap();
        if expect.is_empty() {
            socket.write_all(&[b'x'; 1024]).await.unwrap();
        }
        let started = Instant::now();
        let answer = read_to_close(&mut socket, Duration::from_secs(3))
            .await
            .expect("answered and closed");
        assert!(started.elapsed() < Duration::from_millis(700));
        assert!(answer.starts_with("HTTP/1.1 413"), "{expect:?}: {answer}");
        assert!(!answer.contains("100 Continue"), "{answer}");
        assert!(answer.contains(r#""error":"body_too_large""#), "{answer}");
        assert!(answer.to_ascii_lowercase().contains("connection: close"));
    }
    // Chunked, so no length is declared: refused once it passes the limit.
    let mut socket = connect(&app).await;
    socket
        .write_all(
            b"POST /api/v1/webinars/1/registrations HTTP/1.1\r\nHost: x\r\n\
              Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n",
        )
        .await
        .unwrap();
    let chunk = format!("{:x}\r\n{}\r\n", 70_000, "x".repeat(70_000));
    let _ = socket.write_all(chunk.as_bytes()).await;
    let answer = read_to_close(&mut socket, Duration::from_secs(3))
        .await
        .unwrap();
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains(r#""error":"body_too_large""#), "{answer}");
    assert_eq!(app.total().await, 0, "nothing stored");
}

#[tokio::test]
async fn http_1_1_needs_exactly_one_host() {
    let app = app().await;
    for (head, status) in [
        ("GET /healthz HTTP/1.1\r\n\r\n", "400"),
        ("GET /healthz HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", "400"),
        ("GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n", "200"),
        ("GET /healthz HTTP/1.0\r\n\r\n", "200"),
    ] {
        let mut socket = connect(&app).await;
        socket.write_all(head.as_bytes()).await.unwrap();
        let answer = read_answer(&mut socket).await;
        assert_eq!(&answer[8..12], format!(" {status}"), "{head:?}: {answer}");
        if status == "400" {
            assert!(answer.contains("exactly one Host"), "{answer}");
        }
    }
}

#[tokio::test]
async fn the_frameworks_refusals_come_in_the_apis_json_shape() {
    let app = app().await;
    let missing = app.get("/api/v1/nothing-here").await;
    assert_eq!(missing.status, 404);
    assert_eq!(missing.json["error"], "not_found", "{}", missing.text);
    let wrong_method = TestApp::reply(
        app.http
            .delete(format!("{}/api/v1/webinars", app.base))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(wrong_method.status, 405);
    assert_eq!(wrong_method.json["error"], "method_not_allowed");
    assert!(wrong_method.headers.contains_key("allow"), "Allow is kept");
    let bad_path = app.get("/api/v1/registrations/%FF%FE").await;
    assert_eq!(bad_path.status, 400, "{}", bad_path.text);
    assert_eq!(bad_path.json["error"], "bad_request");
    assert!(bad_path.json["message"].as_str().unwrap().len() > 5);
    let bad_form = TestApp::reply(
        app.http
            .post(format!("{}/admin/login", app.base))
            .header("content-type", "application/json")
            .body("{}")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert!(
        bad_form.json["error"].is_string(),
        "{}: {}",
        bad_form.status,
        bad_form.text
    );
    assert!(
        bad_form.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
}

#[tokio::test]
async fn past_the_connection_limit_new_connections_wait_for_a_free_slot() {
    let app = TestApp::start_with(|c| {
        c.max_connections = 4;
        c.header_timeout = Duration::from_millis(1500);
    })
    .await;
    let mut idle = Vec::new();
    for _ in 0..4 {
        idle.push(connect(&app).await);
    }
    // Give the server a moment to accept all four.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = Instant::now();
    let waiting = app.get("/healthz").await;
    let waited = started.elapsed();
    assert_eq!(waiting.status, 200);
    assert!(
        waited >= Duration::from_millis(900),
        "answered at once ({waited:?}) although every slot was held"
    );
    assert!(waited < Duration::from_secs(5), "{waited:?}");
}
