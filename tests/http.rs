//! hyper 1.x on trapline: a real HTTP/1.1 server answering real requests,
//! over one keep-alive connection, and hyper's own client on trapline too.

mod util;

use std::convert::Infallible;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use trapline::hyper_rt::{HyperExecutor, HyperIo, HyperTimer};
use trapline::net::{TcpListener, TcpStream};
use trapline::spawn;
use util::run_clean;

async fn hello(req: Request<hyper::body::Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let body = format!("hello {}", req.uri().path());
    Ok(Response::new(Full::new(Bytes::from(body))))
}

/// Serves one connection with hyper on trapline, in its own task.
fn serve(stream: TcpStream) -> trapline::JoinHandle<Result<(), hyper::Error>> {
    spawn(async move {
        http1::Builder::new()
            .timer(HyperTimer)
            .serve_connection(HyperIo::new(stream), service_fn(hello))
            .await
    })
    .unwrap()
}

/// Reads one response whose body is `body_len` bytes: head and body, exactly.
async fn read_response(stream: &TcpStream, body_len: usize) -> (String, Vec<u8>) {
    let mut got = Vec::new();
    let mut buf = [0; 1024];
    loop {
        if let Some(end) = got.windows(4).position(|w| w == b"\r\n\r\n") {
            if got.len() >= end + 4 + body_len {
                let head = String::from_utf8(got[..end].to_vec()).unwrap();
                return (head, got[end + 4..].to_vec());
            }
        }
        let n = stream.read(&mut buf).await.unwrap();
        assert_ne!(
            n,
            0,
            "the server closed early: {:?}",
            String::from_utf8_lossy(&got)
        );
        got.extend_from_slice(&buf[..n]);
    }
}

/// Two requests written by hand on one connection get two exact answers:
/// HTTP/1.1 keep-alive, status, length and body byte for byte. Then the
/// client closes and the server's connection task ends cleanly.
#[test]
fn hyper_on_trapline_answers_two_requests_on_one_connection() {
    run_clean(async {
        let listener = TcpListener::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (stream, _) = listener.accept().await.unwrap();
        let server = serve(stream);

        for path in ["/first", "/second/one"] {
            let request = format!("GET {path} HTTP/1.1\r\nHost: test\r\n\r\n");
            client.write_all(request.as_bytes()).await.unwrap();
            let body = format!("hello {path}");
            let (head, got) = read_response(&client, body.len()).await;
            let mut lines = head.split("\r\n");
            assert_eq!(lines.next(), Some("HTTP/1.1 200 OK"));
            let mut headers: Vec<&str> = lines.filter(|l| !l.starts_with("date:")).collect();
            headers.sort();
            assert_eq!(headers, [format!("content-length: {}", body.len())]);
            assert_eq!(got, body.as_bytes());
        }
        client.shutdown(std::net::Shutdown::Write).unwrap();
        server.join().await.unwrap().unwrap();
        let mut rest = [0; 16];
        assert_eq!(
            client.read(&mut rest).await.unwrap(),
            0,
            "closed after the last answer"
        );
    });
}

/// hyper's client on trapline (its connection driven by a trapline task
/// through `HyperExecutor`) asks hyper's server on trapline, twice on one
/// connection, and reads the exact status and body.
#[test]
fn hyper_client_and_server_both_on_trapline() {
    run_clean(async {
        use hyper::rt::Executor;
        let listener = TcpListener::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = listener.local_addr().unwrap();
        let acceptor = spawn(async move {
            let (stream, _) = listener.accept().await?;
            Ok::<_, std::io::Error>(serve(stream))
        })
        .unwrap();
        let stream = TcpStream::connect(addr).await.unwrap();
        let (mut sender, connection) =
            hyper::client::conn::http1::handshake::<_, Full<Bytes>>(HyperIo::new(stream))
                .await
                .unwrap();
        let (done_tx, done_rx) = futures::channel::oneshot::channel();
        HyperExecutor.execute(async move {
            let _ = done_tx.send(connection.await);
        });
        for path in ["/a", "/b/c"] {
            let request = Request::get(path)
                .header("host", "test")
                .body(Full::new(Bytes::new()))
                .unwrap();
            let response = sender.send_request(request).await.unwrap();
            assert_eq!(response.status(), StatusCode::OK);
            let body = response.into_body().collect().await.unwrap().to_bytes();
            assert_eq!(body, format!("hello {path}").as_bytes());
        }
        drop(sender); // the client connection ends, and closes the stream
        done_rx.await.unwrap().unwrap();
        let server = acceptor.join().await.unwrap().unwrap();
        server.join().await.unwrap().unwrap();
    });
}
