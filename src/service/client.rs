//! The client side: how the CLI finds and talks to the service.
//!
//! The CLI uses the service only when it serves the configuration file and state directory this
//! invocation would use (so tests and users with their own `--config`/`--state-dir` never reach a
//! system service by accident), and only for requests whose result would be the same.

use std::os::fd::RawFd;
use std::os::unix::net::UnixStream;
use std::path::Path;

use anyhow::{Result, bail};

use super::protocol::{
    Envelope, FrameError, PROTOCOL_VERSION, Reply, Request, read_reply, write_frame,
    write_frame_with_fd,
};
use vigil_engine::config::ServiceConfig;

use crate::cli::Context;

/// A connection to the service.
pub struct Client {
    stream: UnixStream,
    /// Whether the service treats this caller as an administrator.
    pub admin: bool,
    /// `service.max_reply_size`.
    max_reply: u32,
}

impl Client {
    /// Connects to the service for `context` when one runs with the same configuration file and
    /// state directory (and `--no-daemon` was not given); `None` otherwise.
    pub fn for_context(context: &Context, service: &ServiceConfig) -> Option<Self> {
        if context.no_daemon {
            return None;
        }
        let stream = UnixStream::connect(&service.socket).ok()?;
        // A service that accepts but does not answer must not hang the CLI: it then works
        // in-process.
        let millis = std::time::Duration::from_millis;
        stream
            .set_read_timeout(Some(millis(service.client_hello_timeout_ms)))
            .ok()?;
        let mut client = Self {
            stream,
            admin: false,
            max_reply: service.max_reply_size,
        };
        let Ok(Reply::Hello {
            config,
            state_dir,
            admin,
            ..
        }) = client.call(&Request::Hello)
        else {
            return None;
        };
        let same = |ours: Option<&Path>, theirs: Option<&str>| match (ours, theirs) {
            (None, None) => true,
            (Some(ours), Some(theirs)) => {
                let canonical = |path: &Path| std::fs::canonicalize(path).ok();
                canonical(ours).is_some() && canonical(ours) == canonical(Path::new(theirs))
            }
            _ => false,
        };
        let config_file = context.config_file();
        if !same(config_file.as_deref(), config.as_deref())
            || !same(Some(&context.state_dir()), Some(&state_dir))
        {
            return None;
        }
        client.admin = admin;
        client
            .stream
            .set_read_timeout(Some(millis(service.client_reply_timeout_ms)))
            .ok()?;
        Some(client)
    }

    /// Waits for replies as long as they take (a scan may be quiet for minutes); the service
    /// closing the connection still ends the wait.
    pub fn wait_indefinitely(&self) -> Result<()> {
        self.stream.set_read_timeout(None)?;
        Ok(())
    }

    /// Sends a request.
    pub fn send(&mut self, request: &Request) -> Result<()> {
        let envelope = Envelope {
            protocol: PROTOCOL_VERSION,
            request: request.clone(),
        };
        write_frame(&mut self.stream, &envelope)?;
        Ok(())
    }

    /// Sends a request with a descriptor attached.
    pub fn send_with_fd(&mut self, request: &Request, fd: RawFd) -> Result<()> {
        let envelope = Envelope {
            protocol: PROTOCOL_VERSION,
            request: request.clone(),
        };
        write_frame_with_fd(&self.stream, &envelope, fd)?;
        Ok(())
    }

    /// The next reply; an `error` reply becomes an error carrying its message.
    pub fn reply(&mut self) -> Result<Reply> {
        match read_reply(&self.stream, self.max_reply) {
            Ok(Reply::Error { message, .. }) => Err(anyhow::Error::msg(message)),
            Ok(reply) => Ok(reply),
            Err(FrameError::Closed) => bail!("the service closed the connection"),
            Err(err) => bail!("lost the service: {err}"),
        }
    }

    /// Sends a request and reads one reply.
    pub fn call(&mut self, request: &Request) -> Result<Reply> {
        self.send(request)?;
        self.reply()
    }
}

/// Asks the service for `context`, if one runs, to load definitions and state again after this
/// invocation changed them. A service that cannot be told is a warning, not a failure: the
/// change itself is made.
pub fn notify_reload(context: &Context) {
    let Ok((config, _)) = context.load_config() else {
        return;
    };
    let Some(mut client) = Client::for_context(context, &config.service) else {
        return;
    };
    if let Err(err) = client.call(&Request::Reload) {
        eprintln!(
            "vigil: warning: the service did not reload ({}); send it SIGHUP",
            crate::cli::error_text(&err)
        );
    }
}
