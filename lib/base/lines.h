/*
 * Splitting a byte stream into '\n'-terminated lines with a hard cap: at
 * most `cap` bytes of one partial line are held (allocated on first need).
 * A line longer than cap is reported once, as soon as that is known, with
 * line NULL, and then dropped up to its '\n'.  Used for the control API's
 * requests, Suricata's eve stream and its command socket.
 *
 * Thread: none of its own; one splitter per stream.
 */
#ifndef PP_BASE_LINES_H
#define PP_BASE_LINES_H

#include <stddef.h>

struct pp_lines {
	char *buf;		/* the partial line so far */
	size_t len, cap;
	int discarding;		/* inside an oversized line: drop to its '\n' */
};

/*
 * Called once per complete line (without its '\n' and one '\r' before it;
 * the '\r' counts towards cap; not NUL-terminated and
 * valid only during the call), or with line NULL and len 0 once per line
 * longer than cap.  A nonzero return stops the feed: the owner is going
 * away.
 */
typedef int (*pp_line_fn)(void *arg, const char *line, size_t len);

void pp_lines_init(struct pp_lines *l, size_t cap);
void pp_lines_fini(struct pp_lines *l);
/* Feeds n bytes; returns 0, -ENOMEM, or the first nonzero from fn. */
int pp_lines_feed(struct pp_lines *l, const char *data, size_t n,
    pp_line_fn fn, void *arg);
/* At the end of the stream: a last line without its '\n' is still a line
 * (e.g. `printf ... | socat`).  Returns like pp_lines_feed. */
int pp_lines_finish(struct pp_lines *l, pp_line_fn fn, void *arg);

#endif
