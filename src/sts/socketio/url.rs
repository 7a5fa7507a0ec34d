// SPDX-License-Identifier: MPL-2.0

//! The server URL a user gives, checked and turned into the Engine.IO
//! websocket endpoint; and how a value from outside is shown in a message.

use super::TransportError;

/// The Engine.IO websocket endpoint for a Socket.IO server URL:
/// `http://host:port[/path]` → `ws://host:port/socket.io/?EIO=4&transport=websocket`.
pub fn engine_io_url(sts_url: &str) -> Result<String, TransportError> {
    let (scheme, rest) = sts_url
        .split_once("://")
        .ok_or_else(|| TransportError::Url(format!("'{}' has no scheme", bounded(sts_url))))?;
    let ws_scheme = match scheme.to_ascii_lowercase().as_str() {
        "http" | "ws" => "ws",
        "https" | "wss" => "wss",
        other => {
            return Err(TransportError::Url(format!(
                "unsupported scheme '{}'",
                bounded(other)
            )));
        }
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.is_empty() {
        return Err(TransportError::Url(format!(
            "'{}' has no host",
            bounded(sts_url)
        )));
    }
    check_authority(authority).map_err(TransportError::Url)?;
    Ok(format!(
        "{ws_scheme}://{authority}/socket.io/?EIO=4&transport=websocket"
    ))
}

/// At most this many characters of a value from outside go into a message.
const SHOWN_CHARS: usize = 64;

/// `value` as a message may show it: its first characters, and how long it is.
pub fn bounded(value: &str) -> String {
    if value.chars().count() <= SHOWN_CHARS {
        return value.escape_debug().to_string();
    }
    let head: String = value.chars().take(SHOWN_CHARS).collect();
    format!("{}… ({} bytes)", head.escape_debug(), value.len())
}

/// host[:port], the host a name, an IPv4 address or a bracketed IPv6 one,
/// the port 1 to 65535.
fn check_authority(authority: &str) -> Result<(), String> {
    let (host, port) = match authority.strip_prefix('[') {
        Some(v6) => {
            let (address, after) = v6
                .split_once(']')
                .ok_or_else(|| format!("'{}': an IPv6 host needs its ']'", bounded(authority)))?;
            if address.is_empty()
                || !address
                    .chars()
                    .all(|c| c.is_ascii_hexdigit() || c == ':' || c == '.')
            {
                return Err(format!("'{}' is not an IPv6 address", bounded(address)));
            }
            (None, after.strip_prefix(':'))
        }
        None => match authority.rsplit_once(':') {
            Some((host, port)) => (Some(host), Some(port)),
            None => (Some(authority), None),
        },
    };
    if let Some(host) = host {
        let name_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_');
        if host.is_empty() || host.len() > 253 || !host.chars().all(name_char) {
            return Err(format!(
                "host '{}' is not a host name or address (letters, digits, '-', '.', '_', at most 253)",
                bounded(host)
            ));
        }
    }
    if let Some(port) = port {
        match port.parse::<u32>() {
            Ok(1..=65535) if port.chars().all(|c| c.is_ascii_digit()) => {}
            _ => return Err(format!("port '{}' is not within 1 to 65535", bounded(port))),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_maps_to_engine_io_websocket_endpoint() {
        assert_eq!(
            engine_io_url("http://127.0.0.1:8080").unwrap(),
            "ws://127.0.0.1:8080/socket.io/?EIO=4&transport=websocket"
        );
        assert_eq!(
            engine_io_url("https://sts.example:443/").unwrap(),
            "wss://sts.example:443/socket.io/?EIO=4&transport=websocket"
        );
        assert!(engine_io_url("ftp://x").is_err());
        assert!(engine_io_url("localhost:80").is_err());
        assert!(engine_io_url("http://").is_err());
        assert!(engine_io_url("http://[::1]:8000").is_ok());
        assert!(engine_io_url("http://sts_1.internal").is_ok());
        for bad in [
            "http://127.0.0.1:99999",
            "http://127.0.0.1:0",
            "http://127.0.0.1:80a",
            "http://sts example:8000",
            "http://user@sts:8000",
            "http://[::1",
            "http://[zz]:80",
        ] {
            let error = engine_io_url(bad).expect_err(bad).to_string();
            assert!(
                error.contains("port") || error.contains("host") || error.contains("IPv6"),
                "{bad}: {error}"
            );
        }
    }
}
