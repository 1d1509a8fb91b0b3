//! The one way this binary opens a listening socket (the gateway, the
//! embedded simulator, `switchyard sim`): with a deep accept queue.

use tokio::net::{TcpListener, TcpSocket};

/// Connections the kernel may queue before `accept`. The default from
/// `TcpListener::bind` is 128: a burst of new connections (10,000 clients
/// at once in the benchmark's hold test) overflowed it, and the dropped
/// SYNs came back a second later. The kernel caps this at
/// `net.core.somaxconn` (4096 on current kernels).
const BACKLOG: u32 = 4096;

/// Binds `addr` (`HOST:PORT`; a name is resolved, its first address used).
pub async fn bind(addr: &str) -> Result<TcpListener, String> {
    let fail = |e: std::io::Error| format!("cannot listen on {addr}: {e}");
    let resolved = tokio::net::lookup_host(addr)
        .await
        .map_err(fail)?
        .next()
        .ok_or_else(|| format!("cannot listen on {addr}: the name has no address"))?;
    let socket = if resolved.is_ipv4() { TcpSocket::new_v4() } else { TcpSocket::new_v6() }.map_err(fail)?;
    // As std and tokio do: a restarted gateway can bind while old
    // connections sit in TIME_WAIT.
    socket.set_reuseaddr(true).map_err(fail)?;
    socket.bind(resolved).map_err(fail)?;
    socket.listen(BACKLOG).map_err(fail)
}
