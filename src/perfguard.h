/*-------------------------------------------------------------------------
 *
 * perfguard.h
 *		Constants, enums, the GUC variables and the statement key: what
 *		every perfguard module shares.  Each module has its own header for
 *		its functions and types; docs/design.md draws the map of who may
 *		include whom.
 *
 * Copyright (c) 2026, perfguard developers
 *
 * IDENTIFICATION
 *	  src/perfguard.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef PERFGUARD_H
#define PERFGUARD_H

#include "postgres.h"

#define PFG_VERSION				"1.0"

/* Length of the normalised query text kept per statement (bytes, with NUL). */
#define PFG_QUERY_LEN			2048
/* Length of a request scope's label (route). */
#define PFG_ROUTE_LEN			64
/* Longest repeating sequence of fingerprints recognised (M x N+1). */
#define PFG_SEQ_MAX				5
/* Length of an example parameter set (perfguard.capture_parameters). */
#define PFG_PARAMS_LEN			256
/* Latency histogram: 4 buckets per octave of microseconds, 1 us .. ~33 s. */
#define PFG_HIST_BUCKETS		100
/* Time windows kept per statement (perfguard.window long each). */
#define PFG_WINDOWS				60

/* Values of perfguard.track */
typedef enum pfgTrackLevel
{
	PFG_TRACK_TOP,
	PFG_TRACK_ALL
} pfgTrackLevel;

/* Values of the guard settings (on_n_plus_one, on_duplicate, ...) */
typedef enum pfgGuardAction
{
	PFG_GUARD_OFF,
	PFG_GUARD_LOG,
	PFG_GUARD_WARNING,
	PFG_GUARD_ERROR,
	PFG_GUARD_COLLECT			/* keep, and fail once at the end (tests) */
} pfgGuardAction;

/*
 * Kinds of scope findings kept in the findings table.  The SQL functions
 * take and return them by name (pfg_finding_kind_name).
 */
typedef enum pfgFindingKind
{
	PFG_FIND_NPLUSONE = 1,
	PFG_FIND_DUPLICATE = 2,
	PFG_FIND_WRITELOOP = 3,
	PFG_FIND_SEQUENCE = 4		/* queryid = sequence id; members in seq[] */
} pfgFindingKind;

/*
 * The application framework of a request, from the sqlcommenter tag
 * "framework" (django, rails, flask/sqlalchemy): the fixes speak its
 * vocabulary.  PFG_FW_NONE: untagged, the fixes name all three.
 */
typedef enum pfgFramework
{
	PFG_FW_NONE = 0,
	PFG_FW_DJANGO = 1,
	PFG_FW_RAILS = 2,
	PFG_FW_SQLALCHEMY = 3
} pfgFramework;

/* SQLSTATEs raised by the guard settings (class PF: perfguard) */
#define ERRCODE_PFG_N_PLUS_ONE			MAKE_SQLSTATE('P','F','0','0','1')
#define ERRCODE_PFG_DUPLICATE			MAKE_SQLSTATE('P','F','0','0','2')
#define ERRCODE_PFG_TOO_MANY_QUERIES	MAKE_SQLSTATE('P','F','0','0','3')
#define ERRCODE_PFG_COLLECTED			MAKE_SQLSTATE('P','F','0','0','4')

/*---- GUC variables (perfguard.c) ----*/
extern bool pfg_enabled;
extern int	pfg_max_statements;
extern int	pfg_track;
extern bool pfg_save;
extern int	pfg_n_plus_one_threshold;
extern int	pfg_n_plus_one_linked_threshold;
extern int	pfg_max_open_requests;
extern int	pfg_duplicate_threshold;
extern int	pfg_write_loop_threshold;
extern int	pfg_request_gap;
extern int	pfg_slow_query_ms;
extern int	pfg_offset_threshold;
extern int	pfg_unbounded_rows;
extern int	pfg_on_n_plus_one;
extern int	pfg_on_duplicate;
extern int	pfg_max_queries_per_request;
extern int	pfg_on_too_many_queries;
extern bool pfg_capture_parameters;
extern bool pfg_include_test;
extern char *pfg_cursor_secret;
extern int	pfg_window;
extern int	pfg_unused_index_min_age;
extern int	pfg_advice_refresh;

/* Key of a statement entry; zero-filled before use (padding is hashed). */
typedef struct pfgStmtKey
{
	Oid			userid;
	Oid			dbid;
	uint64		queryid;
	bool		toplevel;
} pfgStmtKey;

#endif							/* PERFGUARD_H */
