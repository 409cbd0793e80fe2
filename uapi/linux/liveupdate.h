/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * Live Update Orchestrator uAPI, as implemented by the Rust LUO.
 *
 * ABI-identical to the uAPI header of Linux 7.3's LUO: the same
 * ioctl type, command numbers, struct sizes and field offsets. The harness
 * checks the identity against the kernel tree it builds.
 */

#ifndef _UAPI_LIVEUPDATE_H
#define _UAPI_LIVEUPDATE_H

#include <linux/ioctl.h>
#include <linux/types.h>

/**
 * DOC: General ioctl format
 *
 * /dev/liveupdate (mode 0600, one open file at a time) creates and retrieves
 * sessions; each session is a file descriptor with ioctls of its own. Every
 * command takes a pointer to a struct whose first field, ``size``, user space
 * sets to sizeof the struct it was compiled with:
 *
 * - an unknown command fails with ENOTTY, before anything is read;
 * - the size header is read first (EFAULT if it cannot be);
 * - a size below the struct's size in this ABI revision fails with EINVAL;
 * - bytes beyond the struct the kernel knows must be zero, else E2BIG;
 * - the kernel answers by copying back min(size, its struct size) bytes,
 *   before the command takes effect: a command that fails with EFAULT has
 *   had no effect.
 *
 * Returned file descriptors are close-on-exec.
 */

#define LIVEUPDATE_IOCTL_TYPE		0xBA

/* Length of a session name, including its terminating NUL. */
#define LIVEUPDATE_SESSION_NAME_LENGTH	64

/* Commands of /dev/liveupdate. */
enum {
	LIVEUPDATE_CMD_BASE = 0x00,
	LIVEUPDATE_CMD_CREATE_SESSION = LIVEUPDATE_CMD_BASE,
	LIVEUPDATE_CMD_RETRIEVE_SESSION = 0x01,
};

/* Commands of session file descriptors. */
enum {
	LIVEUPDATE_CMD_SESSION_BASE = 0x40,
	LIVEUPDATE_CMD_SESSION_PRESERVE_FD = LIVEUPDATE_CMD_SESSION_BASE,
	LIVEUPDATE_CMD_SESSION_RETRIEVE_FD = 0x41,
	LIVEUPDATE_CMD_SESSION_FINISH = 0x42,
	LIVEUPDATE_CMD_SESSION_GET_NAME = 0x43,
};

/**
 * struct liveupdate_ioctl_create_session - LIVEUPDATE_IOCTL_CREATE_SESSION
 * @size: sizeof(struct liveupdate_ioctl_create_session)
 * @fd:   output: the new session's file descriptor
 * @name: input: 1 to 63 bytes and a NUL, unique among this kernel's
 *        outgoing sessions (EINVAL if empty or not terminated, EEXIST if
 *        taken); bytes after the NUL are ignored
 */
struct liveupdate_ioctl_create_session {
	__u32		size;
	__s32		fd;
	__u8		name[LIVEUPDATE_SESSION_NAME_LENGTH];
};

#define LIVEUPDATE_IOCTL_CREATE_SESSION					\
	_IO(LIVEUPDATE_IOCTL_TYPE, LIVEUPDATE_CMD_CREATE_SESSION)

/**
 * struct liveupdate_ioctl_retrieve_session - LIVEUPDATE_IOCTL_RETRIEVE_SESSION
 * @size: sizeof(struct liveupdate_ioctl_retrieve_session)
 * @fd:   output: the session's file descriptor
 * @name: input: the name of a session handed over by the previous kernel
 *        (ENOENT if there is none, EINVAL if it was already retrieved)
 */
struct liveupdate_ioctl_retrieve_session {
	__u32		size;
	__s32		fd;
	__u8		name[LIVEUPDATE_SESSION_NAME_LENGTH];
};

#define LIVEUPDATE_IOCTL_RETRIEVE_SESSION				\
	_IO(LIVEUPDATE_IOCTL_TYPE, LIVEUPDATE_CMD_RETRIEVE_SESSION)

/**
 * struct liveupdate_session_preserve_fd - LIVEUPDATE_SESSION_PRESERVE_FD
 * @size:  sizeof(struct liveupdate_session_preserve_fd)
 * @fd:    input: the file to preserve (EBADF if not open, ENOENT if no
 *         handler supports it, EBUSY if it is preserved already)
 * @token: input: the key to retrieve it with, unique in the session (EEXIST)
 *
 * Outgoing sessions only (EINVAL otherwise). The session keeps a reference
 * on the file: the caller may close @fd.
 */
struct liveupdate_session_preserve_fd {
	__u32		size;
	__s32		fd;
	__aligned_u64	token;
};

#define LIVEUPDATE_SESSION_PRESERVE_FD					\
	_IO(LIVEUPDATE_IOCTL_TYPE, LIVEUPDATE_CMD_SESSION_PRESERVE_FD)

/**
 * struct liveupdate_session_retrieve_fd - LIVEUPDATE_SESSION_RETRIEVE_FD
 * @size:  sizeof(struct liveupdate_session_retrieve_fd)
 * @fd:    output: a new file descriptor for the preserved file
 * @token: input: the token the file was preserved with (ENOENT if none)
 *
 * Incoming sessions only (EINVAL otherwise). Every call returns a new file
 * descriptor for the same file; a failed retrieve fails the same way again.
 */
struct liveupdate_session_retrieve_fd {
	__u32		size;
	__s32		fd;
	__aligned_u64	token;
};

#define LIVEUPDATE_SESSION_RETRIEVE_FD					\
	_IO(LIVEUPDATE_IOCTL_TYPE, LIVEUPDATE_CMD_SESSION_RETRIEVE_FD)

/**
 * struct liveupdate_session_finish - LIVEUPDATE_SESSION_FINISH
 * @size:     sizeof(struct liveupdate_session_finish)
 * @reserved: must be zero (EINVAL)
 *
 * Incoming sessions only (EINVAL otherwise). Ends the life of every file of
 * the session, retrieved or not: EBUSY, with nothing done, if a file's
 * handler refuses. Closing an incoming session finishes it implicitly.
 */
struct liveupdate_session_finish {
	__u32		size;
	__u32		reserved;
};

#define LIVEUPDATE_SESSION_FINISH					\
	_IO(LIVEUPDATE_IOCTL_TYPE, LIVEUPDATE_CMD_SESSION_FINISH)

/**
 * struct liveupdate_session_get_name - LIVEUPDATE_SESSION_GET_NAME
 * @size:     sizeof(struct liveupdate_session_get_name)
 * @reserved: must be zero (EINVAL)
 * @name:     output: the session's name, NUL-terminated
 */
struct liveupdate_session_get_name {
	__u32		size;
	__u32		reserved;
	__u8		name[LIVEUPDATE_SESSION_NAME_LENGTH];
};

#define LIVEUPDATE_SESSION_GET_NAME					\
	_IO(LIVEUPDATE_IOCTL_TYPE, LIVEUPDATE_CMD_SESSION_GET_NAME)

#endif /* _UAPI_LIVEUPDATE_H */
