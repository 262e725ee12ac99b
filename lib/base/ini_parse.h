/*
 * The machinery both of PeerPipe's INI-style parsers run on (the agent's
 * config, lib/agent/config.c, and the gateway's policy, lib/policy/parse.c),
 * above the lexical layer of lib/base/ini.h: the line loop, [section]
 * headers looked up in the parser's table of sections, each `key = value`
 * looked up in the open section's table of keys (with the "unknown key" and
 * "duplicate key" messages), its value handed to the key's setter, the
 * "FILE:LINE:" messages, and setters for the common kinds of value (bounded
 * strings, booleans, whole numbers in a range, ports).  Which sections and
 * keys exist and what their values mean stays with each parser.
 *
 * A parser describes itself in a constant struct pp_ini_syntax, embeds a
 * struct pp_ini as the first member of its own state and calls
 * pp_ini_init() and pp_ini_parse().  Its key tables are arrays of a row type
 * it declares with PP_INI_KEY_ROW(), so that each setter takes the parser's
 * state with its real type; the parser's set callback calls it.
 *
 * Pure, like lib/base/ini.h: no I/O, no globals, no logging; the state
 * belongs to one parse on one thread.
 */
#ifndef PP_BASE_INI_PARSE_H
#define PP_BASE_INI_PARSE_H

#include "base/ini.h"

#include <stddef.h>
#include <stdint.h>

#define PP_INI_MAX_KEYS		16	/* keys of the largest section */
#define PP_INI_MAX_SECTIONS	16	/* sections in a parser's table */

struct pp_ini;

/*
 * Declares struct tag_, a row of a key table: the key, its setter (which
 * takes the parser's state_ *), and whether the key may appear more than
 * once in one section.
 */
#define PP_INI_KEY_ROW(tag_, state_)					\
	struct tag_ {							\
		const char *name;					\
		void (*set)(state_ *p, const char *v, size_t len);	\
		int repeat;						\
	}

struct pp_ini_section {
	int id;			/* the parser's number for it; not 0 */
	const char *name;	/* [name] */
	int named;		/* [name NAME] */
	const void *keys;	/* the parser's PP_INI_KEY_ROW()s */
	size_t nkeys;
	size_t row_size;
	size_t repeat_off;	/* where a row's repeat is */
};

/* An entry of a parser's section table; keys is its array of rows. */
#define PP_INI_SECTION(id_, name_, named_, keys_) {			\
	(id_), (name_), (named_), (keys_),				\
	sizeof(keys_) / sizeof((keys_)[0]),				\
	sizeof((keys_)[0]) + 0 * sizeof(struct {			\
		_Static_assert(sizeof(keys_) / sizeof((keys_)[0]) <=	\
		    PP_INI_MAX_KEYS, "raise PP_INI_MAX_KEYS");		\
		char c;							\
	}),								\
	offsetof(__typeof__((keys_)[0]), repeat),			\
}

/* What a parser reads: constant, one per parser. */
struct pp_ini_syntax {
	const struct pp_ini_section *sections;
	size_t nsections;		/* at most PP_INI_MAX_SECTIONS */
	const char *empty_hint;		/* ends "KEY is empty: give a value, or
					 * remove the line", or "" */
	/* The header of a named section ([service NAME]), ini->sd set: the
	 * parser checks the name, opens its entry and sets the prefix.  0,
	 * or -1 (it reported why; the section's keys are then skipped). */
	int (*open)(struct pp_ini *ini, const char *name, size_t nlen);
	/* Key i of the open section with its value, non-empty and
	 * NUL-terminated: the parser calls that key's setter. */
	void (*set)(struct pp_ini *ini, size_t i, const char *v, size_t len);
	/* The open section ends (a header or the end of the file follows):
	 * checks that need the whole section. */
	void (*close)(struct pp_ini *ini);
};

struct pp_ini {
	const struct pp_ini_syntax *syn;
	const char *path;		/* names the file in messages */
	char (*msg)[PP_INI_ERR_LEN];	/* where messages go ... */
	size_t max_msg;			/* ... how many fit there ... */
	size_t *nmsg;			/* ... and how many were found */
	char *prefix;			/* the parser's buffer for what starts
					 * a message about the open section:
					 * "[ice] ", "service \"db\": " */
	size_t prefix_size;
	int line;			/* the line being read */
	const struct pp_ini_section *sd; /* the open section; NULL before
					 * the first header and under a broken
					 * one (whose keys are not checked) */
	int sect;			/* sd->id, or 0 without sd */
	int sect_line;			/* the last header's line */
	int key_line[PP_INI_MAX_KEYS];	/* where each key of sd was first set */
	int opened[PP_INI_MAX_SECTIONS]; /* each unnamed section's first line */
	unsigned ever[PP_INI_MAX_SECTIONS]; /* keys set anywhere, bit = key */
};

/*
 * Readies ini for one parse of the file named path: messages go to msg
 * (max of them; *nmsg counts them all), a section's message prefix to the
 * parser's buffer prefix.  Everything is borrowed for the parse.
 */
void pp_ini_init(struct pp_ini *ini, const struct pp_ini_syntax *syn,
    const char *path, char (*msg)[PP_INI_ERR_LEN], size_t max_msg,
    size_t *nmsg, char *prefix, size_t prefix_size);

/* "PATH:LINE: " (line 0: "PATH: ") and the text, counted in *nmsg. */
void pp_ini_err(struct pp_ini *ini, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/*
 * Reads text (len bytes, need not be NUL-terminated; NULL reads as empty).
 * Each line is checked as bytes (at most line_max long) before it means
 * anything.  A header closes the open section and opens the next: an
 * unnamed one gets the prefix "[name] " and may appear once, a named one
 * goes to syn->open.  A key is looked up in the open section and its value
 * goes to syn->set.  A file over file_max bytes is one error.  Returns 0
 * (the last section closed), or -1 when it could not read at all (that
 * error reported).
 */
int pp_ini_parse(struct pp_ini *ini, const char *text, size_t len,
    size_t file_max, size_t line_max);

/* The line where key was first set in the open section, or 0. */
int pp_ini_seen(const struct pp_ini *ini, const char *key);
/* Whether key of section id was set anywhere, even with a wrong value. */
int pp_ini_ever(const struct pp_ini *ini, int id, const char *key);
/* The first line of the unnamed section id, or 0 if it is not there. */
int pp_ini_opened(const struct pp_ini *ini, int id);

/*
 * Setters for the open section's keys: each checks the value, stores it
 * in *dst or reports "PREFIX KEY ..." at the current line.  0 or -1.
 */
int pp_ini_set_str(struct pp_ini *ini, const char *key, char *dst,
    size_t size, const char *v, size_t len);	/* at most size - 1 bytes */
int pp_ini_set_bool(struct pp_ini *ini, const char *key, int *dst,
    const char *v, size_t len);			/* yes/no, pp_ini_bool() */
int pp_ini_set_uint(struct pp_ini *ini, const char *key, unsigned *dst,
    unsigned min, unsigned max, const char *v, size_t len);
int pp_ini_set_port(struct pp_ini *ini, const char *key, uint16_t *dst,
    const char *v, size_t len);			/* 1-65535 */

#endif
