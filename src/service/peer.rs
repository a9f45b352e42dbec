//! Who is on the other end of the socket, and descriptors passed over it.
//!
//! Authorization comes from the kernel's record of the peer (`SO_PEERCRED`: the process, user and
//! group that connected), never from the socket file's mode. Root and members of
//! `service.admin_group` (primary or supplementary, from the user database) are administrators.

use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;

/// The kernel's record of a connected peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerCredentials {
    /// Its process id when it connected.
    pub pid: i32,
    /// Its effective user id.
    pub uid: u32,
    /// Its effective group id.
    pub gid: u32,
}

/// Reads `SO_PEERCRED` of a connected socket.
pub fn peer_credentials(stream: &UnixStream) -> io::Result<PeerCredentials> {
    let mut credentials = libc::ucred {
        pid: 0,
        uid: 0,
        gid: 0,
    };
    let mut length = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: the pointer and length describe `credentials`, which outlives the call.
    let result = unsafe {
        libc::getsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&mut credentials as *mut libc::ucred).cast(),
            &mut length,
        )
    };
    if result != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(PeerCredentials {
        pid: credentials.pid,
        uid: credentials.uid,
        gid: credentials.gid,
    })
}

/// The id of the group named `name`, if it exists.
pub fn group_id(name: &str) -> Option<u32> {
    let name = CString::new(name).ok()?;
    let mut group: libc::group = unsafe { std::mem::zeroed() };
    let mut buffer = vec![0 as libc::c_char; 16 * 1024];
    let mut found: *mut libc::group = std::ptr::null_mut();
    // SAFETY: every pointer refers to a live local of the right type and size.
    let result = unsafe {
        libc::getgrnam_r(
            name.as_ptr(),
            &mut group,
            buffer.as_mut_ptr(),
            buffer.len(),
            &mut found,
        )
    };
    (result == 0 && !found.is_null()).then_some(group.gr_gid)
}

/// Whether `peer` is an administrator: root, or a member of the group `admin_group` (its
/// primary group, or a supplementary group of its user in the user database).
pub fn is_admin(peer: &PeerCredentials, admin_group: &str) -> bool {
    if peer.uid == 0 {
        return true;
    }
    let Some(admin) = group_id(admin_group) else {
        return false;
    };
    peer.gid == admin || user_groups(peer.uid, peer.gid).contains(&admin)
}

/// The groups of user `uid` in the user database, `primary` included.
fn user_groups(uid: u32, primary: u32) -> Vec<u32> {
    let mut passwd: libc::passwd = unsafe { std::mem::zeroed() };
    let mut buffer = vec![0 as libc::c_char; 16 * 1024];
    let mut found: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: every pointer refers to a live local of the right type and size.
    let result = unsafe {
        libc::getpwuid_r(
            uid,
            &mut passwd,
            buffer.as_mut_ptr(),
            buffer.len(),
            &mut found,
        )
    };
    if result != 0 || found.is_null() {
        return vec![primary];
    }
    // SAFETY: getpwuid_r succeeded, so pw_name points at a NUL-terminated name in `buffer`.
    let name: &CStr = unsafe { CStr::from_ptr(passwd.pw_name) };
    let mut groups = vec![0 as libc::gid_t; 256];
    let mut count = groups.len() as libc::c_int;
    // SAFETY: `groups` holds `count` entries; the name is NUL-terminated.
    let result =
        unsafe { libc::getgrouplist(name.as_ptr(), primary, groups.as_mut_ptr(), &mut count) };
    if result < 0 {
        return vec![primary];
    }
    groups.truncate(count.max(0) as usize);
    groups
}

/// Sends the start of `bytes` with `fd` attached; returns how many bytes went.
pub fn send_with_fd(stream: &UnixStream, bytes: &[u8], fd: RawFd) -> io::Result<usize> {
    let mut control = [0u8; 64];
    let mut iov = libc::iovec {
        iov_base: bytes.as_ptr() as *mut libc::c_void,
        iov_len: bytes.len(),
    };
    // SAFETY: msghdr is plain data; every pointer set below refers to a live local.
    let mut message: libc::msghdr = unsafe { std::mem::zeroed() };
    message.msg_iov = &mut iov;
    message.msg_iovlen = 1;
    message.msg_control = control.as_mut_ptr().cast();
    // SAFETY: CMSG_SPACE is a pure size computation.
    message.msg_controllen = unsafe { libc::CMSG_SPACE(std::mem::size_of::<RawFd>() as u32) } as _;
    // SAFETY: the control buffer is large enough for one descriptor's header and data.
    unsafe {
        let header = libc::CMSG_FIRSTHDR(&message);
        (*header).cmsg_level = libc::SOL_SOCKET;
        (*header).cmsg_type = libc::SCM_RIGHTS;
        (*header).cmsg_len = libc::CMSG_LEN(std::mem::size_of::<RawFd>() as u32) as _;
        std::ptr::write_unaligned(libc::CMSG_DATA(header).cast::<RawFd>(), fd);
    }
    loop {
        // SAFETY: `message` describes live buffers.
        let sent = unsafe { libc::sendmsg(stream.as_raw_fd(), &message, libc::MSG_NOSIGNAL) };
        if sent >= 0 {
            return Ok(sent as usize);
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
}

/// Receives into `buffer` (at least one byte unless the peer closed), with the first descriptor
/// attached to those bytes. Any further descriptors are closed at once.
pub fn recv_with_fd(
    stream: &UnixStream,
    buffer: &mut [u8],
) -> io::Result<(usize, Option<OwnedFd>)> {
    // Room for a few descriptors, so extra ones are received (and closed), not left in flight.
    let mut control = [0u8; 128];
    let mut iov = libc::iovec {
        iov_base: buffer.as_mut_ptr().cast(),
        iov_len: buffer.len(),
    };
    // SAFETY: msghdr is plain data; every pointer set below refers to a live local.
    let mut message: libc::msghdr = unsafe { std::mem::zeroed() };
    message.msg_iov = &mut iov;
    message.msg_iovlen = 1;
    message.msg_control = control.as_mut_ptr().cast();
    message.msg_controllen = control.len() as _;
    let received = loop {
        // SAFETY: `message` describes live buffers.
        let received =
            unsafe { libc::recvmsg(stream.as_raw_fd(), &mut message, libc::MSG_CMSG_CLOEXEC) };
        if received >= 0 {
            break received as usize;
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
    };
    let mut descriptors = Vec::new();
    // SAFETY: the kernel filled the control buffer and set msg_controllen; the CMSG macros walk
    // it within those bounds, and each SCM_RIGHTS descriptor is new and ours to own.
    unsafe {
        let mut header = libc::CMSG_FIRSTHDR(&message);
        while !header.is_null() {
            if (*header).cmsg_level == libc::SOL_SOCKET && (*header).cmsg_type == libc::SCM_RIGHTS {
                let data = libc::CMSG_DATA(header);
                let bytes = (*header).cmsg_len as usize - libc::CMSG_LEN(0) as usize;
                for index in 0..bytes / std::mem::size_of::<RawFd>() {
                    let fd = std::ptr::read_unaligned(data.cast::<RawFd>().add(index));
                    descriptors.push(OwnedFd::from_raw_fd(fd));
                }
            }
            header = libc::CMSG_NXTHDR(&message, header);
        }
    }
    Ok((received, descriptors.into_iter().next()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Seek};

    #[test]
    fn a_descriptor_passed_arrives_open_and_the_peer_is_known() {
        let (a, b) = UnixStream::pair().unwrap();
        let mut file = tempfile::tempfile().unwrap();
        std::io::Write::write_all(&mut file, b"passed").unwrap();
        let sent = send_with_fd(&a, b"xy", std::os::fd::AsRawFd::as_raw_fd(&file)).unwrap();
        assert_eq!(sent, 2);
        let mut buffer = [0u8; 2];
        let (received, fd) = recv_with_fd(&b, &mut buffer).unwrap();
        assert_eq!((received, &buffer), (2, b"xy"));
        let mut passed = std::fs::File::from(fd.expect("a descriptor"));
        passed.rewind().unwrap();
        let mut text = String::new();
        passed.read_to_string(&mut text).unwrap();
        assert_eq!(text, "passed");
        let me = peer_credentials(&b).unwrap();
        assert_eq!(me.pid as u32, std::process::id());
        // SAFETY: geteuid has no preconditions.
        assert_eq!(me.uid, unsafe { libc::geteuid() });
        assert!(is_admin(
            &PeerCredentials { uid: 0, ..me },
            "no-such-group-here"
        ));
        assert!(!is_admin(
            &PeerCredentials {
                uid: 65534,
                gid: 65534,
                ..me
            },
            "no-such-group-here"
        ));
    }
}
