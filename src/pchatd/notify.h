/* The systemd readiness protocol (sd_notify(3)), without libsystemd: one
 * datagram to $NOTIFY_SOCKET per state change. Does nothing when pchatd is
 * not run by systemd (or by something speaking its protocol). */
#ifndef PC_PCHATD_NOTIFY_H
#define PC_PCHATD_NOTIFY_H

/* Sends `state` (e.g. "READY=1\nSTATUS=serving"); returns 0 if sent or if
 * there is no notify socket, a negative errno value otherwise. */
int pc_sd_notify(const char *state);

#endif
