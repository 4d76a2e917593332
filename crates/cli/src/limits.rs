//! The process's own limits: a gateway holds a file descriptor per connection, and the
//! usual soft limit of 1,024 open files would stop it accepting long before its
//! connection limit (the kernel's hard limit is usually far higher).

/// Descriptors kept for everything but visitors' connections: the database and its
/// journal, connections to GoTo and the forward URL, log files.
const RESERVED_FILES: u64 = 128;

/// Raises the soft open-file limit to the hard limit, and returns `wanted` or, when even
/// the hard limit cannot hold that many connections beside the reserve, as many as it
/// can (saying so).
pub fn connections_within_open_files(wanted: usize) -> usize {
    let before = rlimit::getrlimit(rlimit::Resource::NOFILE).map(|(soft, _)| soft);
    let limit = match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => limit,
        Err(e) => {
            tracing::warn!("cannot raise the open-file limit: {e}");
            match before {
                Ok(soft) => soft,
                Err(_) => return wanted,
            }
        }
    };
    if let Ok(before) = before
        && before != limit
    {
        tracing::info!("open-file limit raised from {before} to {limit}");
    }
    let room = usize::try_from(limit.saturating_sub(RESERVED_FILES).max(1)).unwrap_or(usize::MAX);
    if wanted > room {
        tracing::warn!(
            "max_connections {wanted} does not fit the open-file limit of {limit}; serving at most {room} connections at once (raise the limit, e.g. LimitNOFILE= in systemd)"
        );
        room
    } else {
        wanted
    }
}
