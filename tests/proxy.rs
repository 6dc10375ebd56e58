//! Half-close through `copy_bidirectional`, the heart of `examples/tcp_proxy`.

mod util;

use std::net::Shutdown;
use std::time::Duration;

use trapline::net::{copy_bidirectional, TcpListener, TcpStream};
use trapline::spawn;
use util::{run_clean, Rng};

async fn read_to_end(stream: &TcpStream) -> std::io::Result<Vec<u8>> {
    let mut got = Vec::new();
    let mut buf = [0; 4096];
    loop {
        match stream.read(&mut buf).await? {
            0 => return Ok(got),
            n => got.extend_from_slice(&buf[..n]),
        }
    }
}

/// The client sends a request and half-closes; the backend reads it to end
/// of stream *through the proxy*, only then answers, and closes; the client
/// reads the whole answer and then end of stream. Bytes exact both ways,
/// and the proxy reports what it copied each way.
#[test]
fn half_close_passes_through_the_proxy_both_ways() {
    run_clean(async {
        let backend = TcpListener::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let front = TcpListener::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let (backend_addr, front_addr) =
            (backend.local_addr().unwrap(), front.local_addr().unwrap());
        let request = Rng::new(21).bytes(300_000);
        let answer = Rng::new(22).bytes(200_000);

        let server = {
            let answer = answer.clone();
            spawn(async move {
                let (s, _) = backend.accept().await?;
                // End of stream arrives only because the client half-closed.
                let got = read_to_end(&s).await?;
                s.write_all(&answer).await?;
                Ok::<_, std::io::Error>(got)
            })
            .unwrap()
        };
        let proxy = spawn(async move {
            let (inbound, _) = front.accept().await?;
            let outbound = TcpStream::connect(backend_addr).await?;
            copy_bidirectional(inbound, outbound).await
        })
        .unwrap();

        let client = std::rc::Rc::new(TcpStream::connect(front_addr).await.unwrap());
        let sender = {
            let (client, request) = (client.clone(), request.clone());
            spawn(async move {
                client.write_all(&request).await?;
                client.shutdown(Shutdown::Write)
            })
            .unwrap()
        };
        let got = read_to_end(&client).await.unwrap();
        sender.join().await.unwrap().unwrap();
        assert_eq!(got, answer, "the whole answer, then end of stream");
        assert_eq!(server.join().await.unwrap().unwrap(), request);
        assert_eq!(
            proxy.join().await.unwrap().unwrap(),
            (request.len() as u64, answer.len() as u64)
        );
    });
}

/// A backend that resets its connection ends the proxy with the error, and
/// the client's side is closed rather than left hanging.
#[test]
fn a_reset_on_one_side_ends_both_directions() {
    run_clean(async {
        let backend = TcpListener::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let front = TcpListener::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let (backend_addr, front_addr) =
            (backend.local_addr().unwrap(), front.local_addr().unwrap());
        let server = spawn(async move {
            let (s, _) = backend.accept().await?;
            let mut buf = [0; 5];
            s.read_exact(&mut buf).await?;
            s.set_linger(Some(Duration::ZERO))?; // close with a reset
            Ok::<_, std::io::Error>(buf)
        })
        .unwrap();
        let proxy = spawn(async move {
            let (inbound, _) = front.accept().await?;
            let outbound = TcpStream::connect(backend_addr).await?;
            copy_bidirectional(inbound, outbound).await
        })
        .unwrap();
        let client = TcpStream::connect(front_addr).await.unwrap();
        client.write_all(b"hello").await.unwrap();
        assert_eq!(&server.join().await.unwrap().unwrap(), b"hello");
        let err = proxy.join().await.unwrap().unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::ConnectionReset, "{err}");
        // The proxy shut the client's connection down: end of stream, or a reset.
        match client.read(&mut [0; 8]).await {
            Ok(n) => assert_eq!(n, 0),
            Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset),
        }
    });
}
