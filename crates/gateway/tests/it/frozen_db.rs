//! A PostgreSQL that accepts connections and then stops answering, through a proxy the
//! test can freeze: intake answers 503 within its deadline, /readyz says why, and both
//! recover by themselves once the database answers again.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use g2w_store::{SecretKey, Store};
use serde_json::json;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

use crate::{TestApp, person};

/// Copies `from` to `to`, holding every byte while `frozen`.
async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    frozen: Arc<AtomicBool>,
) {
    let mut buf = vec![0_u8; 16 * 1024];
    loop {
        let Ok(n) = from.read(&mut buf).await else {
            return;
        };
        if n == 0 {
            return;
        }
        while frozen.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

/// A proxy to `upstream` (host:port); returns its address and its freeze switch.
pub async fn freezable_proxy(upstream: String) -> (String, Arc<AtomicBool>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let frozen = Arc::new(AtomicBool::new(false));
    let switch = frozen.clone();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let Ok(server) = TcpStream::connect(&upstream).await else {
                continue;
            };
            let (client_read, client_write) = client.into_split();
            let (server_read, server_write) = server.into_split();
            tokio::spawn(pump(client_read, server_write, frozen.clone()));
            tokio::spawn(pump(server_read, client_write, frozen.clone()));
        }
    });
    (address, switch)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_database_that_stops_answering_gives_503_in_time_and_recovery_by_itself() {
    let Some(url) = g2w_store::test_database_url() else {
        return;
    };
    let parsed = g2w_goto::Url::parse(&url).unwrap();
    let upstream = format!(
        "{}:{}",
        parsed.host_str().unwrap(),
        parsed.port().unwrap_or(5432)
    );
    let (proxy, frozen) = freezable_proxy(upstream.clone()).await;
    let proxied = url.replacen(&upstream, &proxy, 1);
    let store = Arc::new(
        Store::postgres(&proxied, &SecretKey::generate())
            .await
            .unwrap(),
    );
    let app = TestApp::start_on(Some(store), 0, |_| {}).await;
    let (webinar, _) = app.webinar(json!({"subject": "Frozen database"})).await;
    assert_eq!(
        app.post_json(&webinar, &person("before@example.com"))
            .await
            .status,
        202
    );
    assert_eq!(app.get("/readyz").await.status, 200);

    frozen.store(true, Ordering::SeqCst);
    let started = Instant::now();
    let refused = app.post_json(&webinar, &person("during@example.com")).await;
    let took = started.elapsed();
    assert_eq!(refused.status, 503, "{}", refused.text);
    assert_eq!(refused.json["error"], "unavailable");
    assert!(took < Duration::from_secs(3), "answered after {took:?}");
    let started = Instant::now();
    let ready = app.get("/readyz").await;
    assert_eq!(ready.status, 503, "{}", ready.text);
    assert!(
        ready.json["store"].as_str().unwrap().contains("no answer"),
        "{}",
        ready.text
    );
    assert!(started.elapsed() < Duration::from_secs(3));

    frozen.store(false, Ordering::SeqCst);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let reply = app.post_json(&webinar, &person("after@example.com")).await;
        if reply.status == 202 {
            break;
        }
        assert_eq!(reply.status, 503, "{}", reply.text);
        assert!(Instant::now() < deadline, "never recovered: {}", reply.text);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while app.get("/readyz").await.status != 200 {
        assert!(Instant::now() < deadline, "readyz never recovered");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
