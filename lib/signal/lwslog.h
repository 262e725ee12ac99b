/*
 * libwebsockets' own log lines, routed into pp_log under subsystem "lws".
 * lws keeps one log setting per process: call this once, after the log
 * level is configured, from whichever of the server or client starts first.
 */
#ifndef PP_SIGNAL_LWSLOG_H
#define PP_SIGNAL_LWSLOG_H

void pp_lws_log_init(void);

#endif
