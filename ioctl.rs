// SPDX-License-Identifier: GPL-2.0

//! The ioctls of `/dev/liveupdate` and of session fds, as two static op tables (see `ucmd`
//! for the rules every op follows), and the session files themselves.
//!
//! Every op answers before its effect becomes visible, then enters the reboot gate and takes
//! the session's lock once: the check of a session's state and the effect it permits happen
//! under that one acquisition.

use kernel::{
    fs::File,
    prelude::*,
    sync::{
        aref::ARef,
        Arc, //
    },
};

use crate::{
    abi::{
        self,
        CreateSession,
        Finish,
        GetName,
        Name,
        PreserveFd,
        RetrieveFd,
        RetrieveSession, //
    },
    cabi::{
        self,
        AnonFile, //
    },
    fault,
    session::{
        self,
        Kind,
        ListNodes,
        Luo,
        Session,
        State, //
    },
    ucmd::{
        self,
        op,
        Command,
        Op,
        UCmd, //
    },
};

/// Creates the anonymous-inode file of a session, named `[luo_session] <name>` like the C
/// implementation's (systemd recognises session fds by that name). The file owns `session`.
fn session_file(session: &Arc<Session>) -> Result<ARef<File>> {
    cabi::anon_getfile(b"[luo_session] ", session.name.as_bytes(), session.clone())
}

// ---------------------------------------------------------------------------------------------
// /dev/liveupdate.

/// The context of `/dev/liveupdate`'s ioctls.
type Device = &'static Luo;

/// `LIVEUPDATE_IOCTL_CREATE_SESSION`.
struct CreateSessionOp;

impl Command<Device> for CreateSessionOp {
    type Arg = CreateSession;
    const NR: u32 = abi::CMD_CREATE_SESSION;

    fn exec(luo: &Device, cmd: &mut UCmd<CreateSession>) -> Result<isize> {
        fault::create_session();
        let luo: &'static Luo = luo;
        let fd = cabi::unused_fd()?;
        let name = Name::parse(&cmd.get().name)?;
        let session = Session::new_outgoing(luo, name)?;
        // The file owns the session; closing it before the session is listed does nothing.
        let file = session_file(&session)?;
        let nodes = ListNodes::new()?;
        // Answer first: a session whose creation fails with EFAULT was never visible.
        cmd.get_mut().fd = fd.reserved_fd() as i32;
        cmd.respond()?;
        {
            let _pass = luo.gate.enter()?;
            luo.sessions.lock().list(session, nodes)?;
        }
        fd.fd_install(file);
        Ok(0)
    }
}

/// `LIVEUPDATE_IOCTL_RETRIEVE_SESSION`.
struct RetrieveSessionOp;

impl Command<Device> for RetrieveSessionOp {
    type Arg = RetrieveSession;
    const NR: u32 = abi::CMD_RETRIEVE_SESSION;

    fn exec(luo: &Device, cmd: &mut UCmd<RetrieveSession>) -> Result<isize> {
        let fd = cabi::unused_fd()?;
        // A name that is not a valid session name names no session.
        let name = Name::parse(&cmd.get().name).map_err(|_| ENOENT)?;
        let session = luo.incoming_session(&name).ok_or(ENOENT)?;
        // Already retrieved is EINVAL before EFAULT, as in C; the check that counts is the
        // one below, under the same lock as the effect.
        if session.inner.lock().state == State::Retrieved {
            return Err(EINVAL);
        }
        // Answer first: if user memory faults, nothing has happened.
        cmd.get_mut().fd = fd.reserved_fd() as i32;
        cmd.respond()?;
        let pass = luo.gate.enter()?;
        let mut inner = session.inner.lock();
        match inner.state {
            State::Waiting => {}
            State::Retrieved => return Err(EINVAL),
            _ => return Err(ENOENT),
        }
        let file = session_file(&session)?;
        inner.state = State::Retrieved;
        drop(inner);
        drop(pass);
        fd.fd_install(file);
        Ok(0)
    }
}

/// The op table of `/dev/liveupdate`.
static DEVICE_OPS: [Op<Device>; 2] = ucmd::checked_table(
    [
        op::<Device, CreateSessionOp>(),
        op::<Device, RetrieveSessionOp>(),
    ],
    abi::CMD_BASE,
);

/// An ioctl on `/dev/liveupdate`.
pub(crate) fn device_ioctl(luo: &'static Luo, cmd: u32, arg: usize) -> Result<isize> {
    ucmd::dispatch(&DEVICE_OPS, abi::CMD_BASE, &luo, cmd, arg)
}

// ---------------------------------------------------------------------------------------------
// Session fds.

/// `EINVAL` unless the session is of `kind`.
fn only(s: &Arc<Session>, kind: Kind) -> Result {
    if s.kind == kind {
        Ok(())
    } else {
        Err(EINVAL)
    }
}

/// `LIVEUPDATE_SESSION_PRESERVE_FD`.
struct PreserveFdOp;

impl Command<Arc<Session>> for PreserveFdOp {
    type Arg = PreserveFd;
    const NR: u32 = abi::CMD_PRESERVE_FD;

    fn allowed(s: &Arc<Session>) -> Result {
        only(s, Kind::Outgoing)
    }

    fn exec(s: &Arc<Session>, cmd: &mut UCmd<PreserveFd>) -> Result<isize> {
        let (token, fd) = (cmd.get().token, cmd.get().fd);
        // The answer is the request itself: send it first, so EFAULT means nothing happened.
        cmd.respond()?;
        let _pass = s.luo.gate.enter()?;
        let mut inner = s.inner.lock();
        // An outgoing session with an fd is listed until the fd is closed.
        if !matches!(inner.state, State::Listed { .. }) {
            return Err(EINVAL);
        }
        inner.files.preserve(&s.luo.core, token, fd)?;
        Ok(0)
    }
}

/// `LIVEUPDATE_SESSION_RETRIEVE_FD`.
struct RetrieveFdOp;

impl Command<Arc<Session>> for RetrieveFdOp {
    type Arg = RetrieveFd;
    const NR: u32 = abi::CMD_RETRIEVE_FD;

    fn allowed(s: &Arc<Session>) -> Result {
        only(s, Kind::Incoming)
    }

    fn exec(s: &Arc<Session>, cmd: &mut UCmd<RetrieveFd>) -> Result<isize> {
        let fd = cabi::unused_fd()?;
        let token = cmd.get().token;
        cmd.get_mut().fd = fd.reserved_fd() as i32;
        cmd.respond()?;
        let pass = s.luo.gate.enter()?;
        let file = s.inner.lock().files.retrieve(&s.luo.core, token)?;
        drop(pass);
        fd.fd_install(file);
        Ok(0)
    }
}

/// `LIVEUPDATE_SESSION_FINISH`: finishes every file (all or nothing: `EBUSY` if one cannot
/// finish yet). The session stays, empty and incoming, until its fd is closed, as in C; its
/// name is free for an outgoing session all along.
struct FinishOp;

impl Command<Arc<Session>> for FinishOp {
    type Arg = Finish;
    const NR: u32 = abi::CMD_FINISH;

    fn allowed(s: &Arc<Session>) -> Result {
        only(s, Kind::Incoming)
    }

    fn exec(s: &Arc<Session>, cmd: &mut UCmd<Finish>) -> Result<isize> {
        if cmd.get().reserved != 0 {
            return Err(EINVAL);
        }
        cmd.respond()?;
        let _pass = s.luo.gate.enter()?;
        s.inner.lock().files.finish(&s.luo.core)?;
        Ok(0)
    }
}

/// `LIVEUPDATE_SESSION_GET_NAME`.
struct GetNameOp;

impl Command<Arc<Session>> for GetNameOp {
    type Arg = GetName;
    const NR: u32 = abi::CMD_GET_NAME;

    fn exec(s: &Arc<Session>, cmd: &mut UCmd<GetName>) -> Result<isize> {
        if cmd.get().reserved != 0 {
            return Err(EINVAL);
        }
        cmd.get_mut().name = *s.name.field();
        cmd.respond()?;
        Ok(0)
    }
}

/// The op table of session fds.
static SESSION_OPS: [Op<Arc<Session>>; 4] = ucmd::checked_table(
    [
        op::<Arc<Session>, PreserveFdOp>(),
        op::<Arc<Session>, RetrieveFdOp>(),
        op::<Arc<Session>, FinishOp>(),
        op::<Arc<Session>, GetNameOp>(),
    ],
    abi::SESSION_CMD_BASE,
);

impl AnonFile for Session {
    fn ioctl(this: &Arc<Self>, cmd: u32, arg: usize) -> Result<isize> {
        ucmd::dispatch(&SESSION_OPS, abi::SESSION_CMD_BASE, this, cmd, arg)
    }

    fn release(this: Arc<Self>) {
        session::release(this);
    }
}
