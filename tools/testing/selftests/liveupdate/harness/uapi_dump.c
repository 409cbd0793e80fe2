// SPDX-License-Identifier: GPL-2.0
/*
 * Every ABI fact of <linux/liveupdate.h>: sizes, offsets, alignment and
 * command values. The harness compiles it against the kernel tree's header
 * and against this repository's, for -m64 and -m32, and the facts must be
 * identical.
 */
#include <stddef.h>
#include <linux/liveupdate.h>

/*
 * Every fact as one number. Built with -S, the facts become an array of
 * ".quad" lines in the assembly, which is how a 32-bit build (with no
 * 32-bit libc on the machine) is compared too.
 */
#define SZ(t) sizeof(struct t), _Alignof(struct t)
#define OFF(t, f) offsetof(struct t, f), sizeof(((struct t *)0)->f)

unsigned long long luo_uapi_facts[] = {
	LIVEUPDATE_IOCTL_TYPE,
	LIVEUPDATE_SESSION_NAME_LENGTH,
	LIVEUPDATE_CMD_BASE,
	LIVEUPDATE_CMD_CREATE_SESSION,
	LIVEUPDATE_CMD_RETRIEVE_SESSION,
	LIVEUPDATE_CMD_SESSION_BASE,
	LIVEUPDATE_CMD_SESSION_PRESERVE_FD,
	LIVEUPDATE_CMD_SESSION_RETRIEVE_FD,
	LIVEUPDATE_CMD_SESSION_FINISH,
	LIVEUPDATE_CMD_SESSION_GET_NAME,
	LIVEUPDATE_IOCTL_CREATE_SESSION,
	LIVEUPDATE_IOCTL_RETRIEVE_SESSION,
	LIVEUPDATE_SESSION_PRESERVE_FD,
	LIVEUPDATE_SESSION_RETRIEVE_FD,
	LIVEUPDATE_SESSION_FINISH,
	LIVEUPDATE_SESSION_GET_NAME,
	SZ(liveupdate_ioctl_create_session),
	OFF(liveupdate_ioctl_create_session, size),
	OFF(liveupdate_ioctl_create_session, fd),
	OFF(liveupdate_ioctl_create_session, name),
	SZ(liveupdate_ioctl_retrieve_session),
	OFF(liveupdate_ioctl_retrieve_session, size),
	OFF(liveupdate_ioctl_retrieve_session, fd),
	OFF(liveupdate_ioctl_retrieve_session, name),
	SZ(liveupdate_session_preserve_fd),
	OFF(liveupdate_session_preserve_fd, size),
	OFF(liveupdate_session_preserve_fd, fd),
	OFF(liveupdate_session_preserve_fd, token),
	SZ(liveupdate_session_retrieve_fd),
	OFF(liveupdate_session_retrieve_fd, size),
	OFF(liveupdate_session_retrieve_fd, fd),
	OFF(liveupdate_session_retrieve_fd, token),
	SZ(liveupdate_session_finish),
	OFF(liveupdate_session_finish, size),
	OFF(liveupdate_session_finish, reserved),
	SZ(liveupdate_session_get_name),
	OFF(liveupdate_session_get_name, size),
	OFF(liveupdate_session_get_name, reserved),
	OFF(liveupdate_session_get_name, name),
};
