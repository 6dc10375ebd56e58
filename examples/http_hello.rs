//! HTTP/1.1 with keep-alive: hyper 1.x serving "Hello, world!" on trapline,
//! or the very same service on tokio, for comparison.
//!
//! Run it with:
//!
//! ```text
//! cargo run --release --example http_hello -- --addr 127.0.0.1:8080
//! curl -v http://127.0.0.1:8080/
//! ```
//!
//! `--runtime tokio` serves the same hyper service on a tokio
//! current-thread runtime instead (one thread each, a fair match);
//! `scripts/http_bench.sh` loads both with `wrk` in one run.

use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::Full;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};

const USAGE: &str =
    "usage: http_hello [--addr IP:PORT] [--runtime trapline|tokio]   (default 127.0.0.1:8080, trapline)";

/// The service both runtimes serve: `GET /` says hello, anything else is 404.
async fn hello(req: Request<hyper::body::Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let (status, body) = match (req.method(), req.uri().path()) {
        (&hyper::Method::GET, "/") => (StatusCode::OK, "Hello, world!\n"),
        _ => (StatusCode::NOT_FOUND, "not found\n"),
    };
    let mut response = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        "content-type",
        "text/plain".parse().expect("a valid header"),
    );
    Ok(response)
}

async fn serve_trapline(addr: SocketAddr) -> io::Result<()> {
    use trapline::hyper_rt::{HyperIo, HyperTimer};
    let listener = trapline::net::TcpListener::builder(addr)
        .nodelay(true)
        .bind()?;
    println!(
        "http_hello (trapline) on http://{}/",
        listener.local_addr()?
    );
    loop {
        let (stream, _) = listener.accept().await?;
        trapline::spawn(async move {
            let served = http1::Builder::new()
                .timer(HyperTimer)
                .serve_connection(HyperIo::new(stream), service_fn(hello))
                .await;
            if let Err(e) = served {
                log::info!("connection: {e}");
            }
        })?;
    }
}

async fn serve_tokio(addr: SocketAddr) -> io::Result<()> {
    use hyper_util::rt::{TokioIo, TokioTimer};
    let listener = tokio::net::TcpListener::bind(addr).await?;
    println!("http_hello (tokio) on http://{}/", listener.local_addr()?);
    loop {
        let (stream, _) = listener.accept().await?;
        stream.set_nodelay(true)?;
        tokio::task::spawn(async move {
            let served = http1::Builder::new()
                .timer(TokioTimer::new())
                .serve_connection(TokioIo::new(stream), service_fn(hello))
                .await;
            if let Err(e) = served {
                log::info!("connection: {e}");
            }
        });
    }
}

fn main() {
    env_logger::init();
    let mut addr: SocketAddr = "127.0.0.1:8080".parse().expect("a valid default");
    let mut tokio_side = false;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let value = |args: &mut dyn Iterator<Item = String>| {
            args.next().unwrap_or_else(|| {
                eprintln!("http_hello: {arg} needs a value\n{USAGE}");
                std::process::exit(2)
            })
        };
        match arg.as_str() {
            "--addr" => {
                let v = value(&mut args);
                addr = v.parse().unwrap_or_else(|e| {
                    eprintln!("http_hello: --addr {v:?}: {e}\n{USAGE}");
                    std::process::exit(2)
                });
            }
            "--runtime" => match value(&mut args).as_str() {
                "trapline" => tokio_side = false,
                "tokio" => tokio_side = true,
                other => {
                    eprintln!("http_hello: unknown runtime {other:?}\n{USAGE}");
                    std::process::exit(2)
                }
            },
            "-h" | "--help" => {
                println!("{USAGE}");
                return;
            }
            other => {
                eprintln!("http_hello: unknown argument {other:?}\n{USAGE}");
                std::process::exit(2)
            }
        }
    }
    let outcome = if tokio_side {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .and_then(|rt| rt.block_on(serve_tokio(addr)))
    } else {
        trapline::run(serve_trapline(addr)).and_then(|served| served)
    };
    if let Err(e) = outcome {
        eprintln!("http_hello: {addr}: {e}");
        std::process::exit(1);
    }
}
